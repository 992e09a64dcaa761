"""A read-only table of a DataFrame's rows; selecting a row hands it to a callback."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem


class FrameTable(QTableWidget):
    """Rows of `frame` (columns as given); `on_select(row)` gets the selected row.
    Sorting by a column header keeps each row tied to its frame row."""

    def __init__(self, on_select: Callable[[pd.Series], None], sortable: bool = False):
        super().__init__(0, 0)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        self.setMinimumHeight(160)
        self.frame = pd.DataFrame()
        self._sortable = sortable
        self._on_select = on_select
        self.itemSelectionChanged.connect(self._selected)

    def set_frame(self, frame: pd.DataFrame, select_first: bool = True) -> None:
        self.setSortingEnabled(False)  # filling a sorting table scrambles rows
        self.frame = frame.reset_index(drop=True)
        self.setColumnCount(len(self.frame.columns))
        self.setHorizontalHeaderLabels([str(c) for c in self.frame.columns])
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)
        self.setRowCount(len(self.frame))
        for r, row in enumerate(self.frame.itertuples(index=False)):
            for c, value in enumerate(row):
                item = QTableWidgetItem()
                if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
                    item.setData(Qt.ItemDataRole.DisplayRole, float(value) if isinstance(value, (float, np.floating))
                                 else int(value))  # numbers sort as numbers
                else:
                    item.setText(", ".join(map(str, value)) if isinstance(value, tuple) else str(value))
                    item.setToolTip(item.text())  # long text (a suspect's reason) is cut off in its cell
                item.setData(Qt.ItemDataRole.UserRole, r)
                self.setItem(r, c, item)
        self.setSortingEnabled(self._sortable)
        if select_first and len(self.frame):
            self.selectRow(0)

    def current(self) -> pd.Series | None:
        item = self.item(self.currentRow(), 0) if self.currentRow() >= 0 else None
        return None if item is None else self.frame.iloc[item.data(Qt.ItemDataRole.UserRole)]

    def _selected(self) -> None:
        row = self.current()
        if row is not None:
            self._on_select(row)
