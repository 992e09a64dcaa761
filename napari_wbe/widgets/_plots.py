"""Matplotlib views of an emulation: the spike raster with a time cursor, and a frequency
sweep (readout rate against stimulus rate)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

ROLE_TICK_COLOURS = {"stimulated": "#2a9d3f", "silenced": "#4060e0", "readout": "#d08000"}


class RasterView(FigureCanvasQTAgg):
    """One dot per spike (time, neuron); the cursor marks the animation's frame and is drawn
    over a saved background, so following the animation does not redraw the dots. Clicking seeks."""

    def __init__(self, on_seek: Callable[[float], None]):
        self.figure = Figure(figsize=(4, 2.6), layout="constrained")
        super().__init__(self.figure)
        self.axes = self.figure.add_subplot()
        self.cursor = None
        self._background = None
        self._on_seek = on_seek
        self.setMinimumHeight(220)
        self.mpl_connect("button_press_event", self._clicked)
        self.mpl_connect("draw_event", self._store_background)

    def show_spikes(self, spikes: pd.DataFrame, order: np.ndarray, roles: np.ndarray, duration_ms: float,
                    title: str) -> None:
        self.figure.clear()
        self.axes = self.figure.add_subplot()
        colours = np.array([ROLE_TICK_COLOURS.get(r, "#303030") for r in roles])
        rows = spikes["row"].to_numpy()
        self.axes.scatter(spikes["t_ms"], rows, s=4, marker="|", c=colours[rows] if len(rows) else None,
                          linewidths=0.8)
        self.axes.set_xlim(0, duration_ms)
        self.axes.set_ylim(len(order) - 0.5, -0.5)
        self.axes.set_xlabel("time (ms)", fontsize=8)
        self.axes.set_ylabel("neuron", fontsize=8)
        self.axes.set_title(title, fontsize=9)
        if len(order) <= 25:
            self.axes.set_yticks(range(len(order)), [str(i) for i in order], fontsize=7)
            for tick, role in zip(self.axes.get_yticklabels(), roles):
                tick.set_color(ROLE_TICK_COLOURS.get(role, "black"))
        self.axes.tick_params(labelsize=7)
        self.cursor = self.axes.axvline(0, color="#d03030", linewidth=1.2, animated=True)
        self.draw()

    def set_cursor(self, t_ms: float) -> None:
        if self.cursor is None or self._background is None:
            return
        self.cursor.set_xdata([t_ms, t_ms])
        self.restore_region(self._background)
        self.axes.draw_artist(self.cursor)
        # not blit(): under Qt it repaints synchronously, and with the GL canvas in the same
        # window that repaint costs a whole window redraw (~40 ms) per frame; update() is
        # queued and shares the viewer's next paint
        self.update()

    def _store_background(self, event) -> None:
        self._background = self.copy_from_bbox(self.axes.bbox)
        if self.cursor is not None:
            self.axes.draw_artist(self.cursor)

    def _clicked(self, event) -> None:
        if event.inaxes is self.axes and event.xdata is not None:
            self._on_seek(float(event.xdata))


class SweepView(FigureCanvasQTAgg):
    """Readout rate (mean +- SD over trials) against the stimulus rate, one line per readout."""

    def __init__(self):
        self.figure = Figure(figsize=(4, 2.2), layout="constrained")
        super().__init__(self.figure)
        self.axes = self.figure.add_subplot()
        self.setMinimumHeight(180)

    def show_sweep(self, sweep: pd.DataFrame) -> None:
        self.axes.clear()
        for neuron, rows in sweep.groupby("neuron"):
            self.axes.errorbar(rows["stimulus_hz"], rows["mean_hz"], yerr=rows["sd_hz"], marker="o", markersize=3,
                               capsize=2, label=str(neuron))
        self.axes.set_xlabel("stimulus rate (Hz)", fontsize=8)
        self.axes.set_ylabel("readout rate (Hz)", fontsize=8)
        self.axes.tick_params(labelsize=7)
        self.axes.legend(fontsize=7, title="readout", title_fontsize=7)
        self.draw_idle()
