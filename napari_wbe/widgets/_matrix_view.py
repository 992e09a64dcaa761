"""A connectivity matrix heatmap (matplotlib in Qt); clicking a cell reports its pair."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure


class MatrixView(FigureCanvasQTAgg):
    """Synapse counts, rows = presynaptic, columns = postsynaptic, log colour scale.

    `on_pick(pre, post)` gets the row and column labels of a clicked cell."""

    def __init__(self, on_pick: Callable[[object, object], None]):
        self.figure = Figure(figsize=(4, 4), layout="constrained")
        super().__init__(self.figure)
        self.axes = self.figure.add_subplot()
        self.matrix = pd.DataFrame()
        self._on_pick = on_pick
        self.setMinimumHeight(260)
        self.mpl_connect("button_press_event", self._clicked)

    def show_matrix(self, matrix: pd.DataFrame, title: str) -> None:
        self.matrix = matrix
        self.figure.clear()
        self.axes = self.figure.add_subplot()
        values = matrix.to_numpy(dtype=float)
        shown = np.ma.masked_less_equal(values, 0)
        positive = values[values > 0]
        norm = LogNorm(vmin=1, vmax=max(float(positive.max()), 2.0)) if positive.size else None
        image = self.axes.imshow(shown, cmap="magma", norm=norm, interpolation="nearest", aspect="auto")
        self.figure.colorbar(image, ax=self.axes, label="synapses")
        self.axes.set_title(title, fontsize=9)
        self.axes.set_xlabel("postsynaptic", fontsize=8)
        self.axes.set_ylabel("presynaptic", fontsize=8)
        for axis, labels, setter in ((self.axes.xaxis, matrix.columns, self.axes.set_xticks),
                                     (self.axes.yaxis, matrix.index, self.axes.set_yticks)):
            if len(labels) <= 30:  # beyond that the labels overlap: hover the cells instead
                setter(range(len(labels)), [str(v) for v in labels], fontsize=7,
                       rotation=90 if axis is self.axes.xaxis else 0)
            else:
                setter([])
        self.draw_idle()

    def _clicked(self, event) -> None:
        if event.inaxes is not self.axes or event.xdata is None or self.matrix.empty:
            return
        row, column = int(round(event.ydata)), int(round(event.xdata))
        if 0 <= row < self.matrix.shape[0] and 0 <= column < self.matrix.shape[1]:
            self._on_pick(self.matrix.index[row], self.matrix.columns[column])
