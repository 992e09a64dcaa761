"""The review queue: ranked suspects in a table; the selected row is the one to decide."""

from __future__ import annotations

import pandas as pd

from ._frame_table import FrameTable

COLUMNS = ["kind", "labels", "score", "reason"]


class ReviewTable(FrameTable):
    """One row per suspect, best first; deciding a row moves on to the next."""

    def set_rows(self, rows: pd.DataFrame) -> None:
        self.rows = rows.reset_index(drop=True)
        self.set_frame(self.rows[COLUMNS].assign(score=self.rows["score"].round(4)))

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
