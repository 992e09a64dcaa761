"""The review queue: ranked suspects in a table; the selected row is the one to decide."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

COLUMNS = ("kind", "labels", "score", "reason")


class ReviewTable(QTableWidget):
    """One row per suspect, best first; `on_select(row)` gets the suspect's table row."""

    def __init__(self, on_select: Callable[[pd.Series], None]):
        super().__init__(0, len(COLUMNS))
        self.setHorizontalHeaderLabels([c.capitalize() for c in COLUMNS])
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.horizontalHeader().setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setVisible(False)
        self.setMinimumHeight(160)
        self.rows = pd.DataFrame(columns=list(COLUMNS))
        self._on_select = on_select
        self.itemSelectionChanged.connect(self._selected)

    def set_rows(self, rows: pd.DataFrame) -> None:
        self.rows = rows.reset_index(drop=True)
        self.setRowCount(len(self.rows))
        for r, row in self.rows.iterrows():
            cells = (row["kind"], ", ".join(str(i) for i in row["labels"]), f"{row['score']:.3g}", row["reason"])
            for c, text in enumerate(cells):
                item = QTableWidgetItem(str(text))
                item.setToolTip(str(row["reason"]))
                self.setItem(r, c, item)
        if len(self.rows):
            self.selectRow(0)

    def current(self) -> pd.Series | None:
        row = self.currentRow()
        return self.rows.iloc[row] if 0 <= row < len(self.rows) else None

    def done_with_current(self) -> None:
        """Drop the decided row; the next one becomes current."""
        row = self.currentRow()
        if not 0 <= row < len(self.rows):
            return
        self.rows = self.rows.drop(index=self.rows.index[row]).reset_index(drop=True)
        self.removeRow(row)
        if len(self.rows):
            self.selectRow(min(row, len(self.rows) - 1))

    def _selected(self) -> None:
        row = self.current()
        if row is not None:
            self._on_select(row)
