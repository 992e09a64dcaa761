"""The review queue: ranked suspects in a table; the selected row is the one to decide."""

from __future__ import annotations

import pandas as pd

from ._frame_table import FrameTable

COLUMNS = ["kind", "labels", "score", "reason"]


class ReviewTable(FrameTable):
    """One row per suspect, best first; deciding a row moves on to the next."""

    def set_rows(self, rows: pd.DataFrame, select_first: bool = True) -> None:
        """Show these rows. select_first: the first becomes current (the view flies to it);
        otherwise the current row stays current if it is still there, without a flight (a
        re-rank after an edit elsewhere must not move the camera), and none is if it is not."""
        kept = None if select_first else self.current()
        self.rows = rows.reset_index(drop=True)
        frame = self.rows[COLUMNS].assign(score=self.rows["score"].round(4))
        if select_first:
            self.set_frame(frame)
            return
        self.blockSignals(True)
        try:
            self.set_frame(frame, select_first=False)
            same = [k for k, labels in enumerate(self.rows["labels"]) if kept is not None and
                    (labels, self.rows["kind"].iloc[k]) == (kept["labels"], kept["kind"])]
            if same:
                self.selectRow(same[0])
            else:
                self.clearSelection()
                self.setCurrentCell(-1, -1)
        finally:
            self.blockSignals(False)

    def select_labels(self, labels: tuple) -> None:
        """Make the row about these segments current (the view flies to it), if there is one."""
        rows = [k for k, row in enumerate(self.rows["labels"]) if tuple(row) == tuple(labels)]
        if rows:
            self.selectRow(rows[0])

    def select_first(self) -> None:
        if len(self.frame):
            self.selectRow(0)

    def current(self) -> pd.Series | None:
        row = self.currentRow()
        return self.rows.iloc[row] if 0 <= row < len(self.frame) else None

    def done_with_current(self) -> None:
        """Drop the decided row; the next one becomes current."""
        row = self.currentRow()
        if not 0 <= row < len(self.frame):
            return
        self.rows = self.rows.drop(index=self.rows.index[row]).reset_index(drop=True)
        self.frame = self.frame.drop(index=self.frame.index[row]).reset_index(drop=True)
        self.removeRow(row)
        if len(self.frame):
            self.selectRow(min(row, len(self.frame) - 1))
