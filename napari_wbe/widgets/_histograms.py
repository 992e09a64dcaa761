"""Small multiples of per-channel intensity histograms, with the thresholds drawn on them.

Drawn with QPainter rather than matplotlib: it is a few dozen lines, needs no extra
dependency, repaints instantly while a slider moves, and follows qtpy to PyQt5 or PyQt6.
"""

from __future__ import annotations

import math

import numpy as np
from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QFont, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget

TILE_HEIGHT = 46
CAPTION_HEIGHT = 16
MAX_COLUMNS = 6
DISPLAY_MAX = 1.5  # normalised intensity; past 1 (the bright level) is a thin tail
BAR_COLOR = "#5fb3ff"
TILE_COLOR = "#20242c"
TEXT_COLOR = "#b8c0cc"
CAPTION = "log counts · │ bit threshold · shaded: below foreground · dotted: bright"


class ChannelHistograms(QWidget):
    """One tiny panel per channel: log counts of normalised intensity (0 = off level,
    1 = bright level, dotted, up to DISPLAY_MAX), the channel's on/off threshold (white
    line), and the intensities below the foreground threshold shaded."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.counts = np.zeros((0, 1))
        self.edges = np.array([0.0, 1.0])
        self.thresholds: np.ndarray | None = None
        self.foreground = 0.0
        self.names: list[str] = []
        self.colors: list[str] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(0)

    @property
    def n_panels(self) -> int:
        return len(self.counts)

    def set_data(self, counts, edges, thresholds=None, foreground=0.0, names=(), colors=()) -> None:
        self.counts = np.log1p(np.asarray(counts, dtype=float))
        self.edges = np.asarray(edges, dtype=float)
        self.thresholds = None if thresholds is None else np.asarray(thresholds, dtype=float)
        self.foreground = float(foreground)
        self.names = [str(n) for n in names] or [f"ch {i}" for i in range(len(self.counts))]
        self.colors = list(colors)
        rows = math.ceil(self.n_panels / self._columns()) if self.n_panels else 0
        self.setFixedHeight(rows * TILE_HEIGHT + CAPTION_HEIGHT if rows else 0)
        self.setToolTip(CAPTION)
        self.update()

    def set_foreground(self, value: float) -> None:
        self.foreground = float(value)
        self.update()

    def clear(self) -> None:
        self.set_data(np.zeros((0, 1)), [0.0, 1.0])

    def _columns(self) -> int:
        return max(1, min(MAX_COLUMNS, self.n_panels))

    def paintEvent(self, event) -> None:
        if not self.n_panels:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = QFont(self.font())
        font.setPointSizeF(max(6.5, font.pointSizeF() * 0.75))
        painter.setFont(font)
        columns = self._columns()
        width = (self.width() - 2) / columns
        for c in range(self.n_panels):
            row, column = divmod(c, columns)
            tile = QRectF(1 + column * width, 2 + row * TILE_HEIGHT, width - 3, TILE_HEIGHT - 4)
            self._paint_tile(painter, tile, c)
        painter.setPen(QColor(TEXT_COLOR))
        caption = QRectF(1, self.height() - CAPTION_HEIGHT, self.width() - 2, CAPTION_HEIGHT)
        text = painter.fontMetrics().elidedText(CAPTION, Qt.TextElideMode.ElideRight, int(caption.width()))
        painter.drawText(caption, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), text)
        painter.end()

    def _paint_tile(self, painter: QPainter, tile: QRectF, c: int) -> None:
        painter.fillRect(tile, QColor(TILE_COLOR))
        plot = tile.adjusted(2, 12, -2, -2)
        low, high = self.edges[0], min(self.edges[-1], DISPLAY_MAX)

        def x_of(value: float) -> float:
            return plot.left() + plot.width() * (min(max(value, low), high) - low) / (high - low)

        counts = self.counts[c]
        top = counts.max() or 1.0
        points = [QPointF(plot.left(), plot.bottom())]
        for i, count in enumerate(counts[self.edges[:-1] < high]):
            y = plot.bottom() - plot.height() * count / top
            points += [QPointF(x_of(self.edges[i]), y), QPointF(x_of(self.edges[i + 1]), y)]
        points.append(QPointF(plot.right(), plot.bottom()))
        color = QColor(self.colors[c] if c < len(self.colors) else BAR_COLOR)
        color.setAlpha(200)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawPolygon(QPolygonF(points))
        below = QRectF(plot.left(), plot.top(), x_of(self.foreground) - plot.left(), plot.height())
        painter.fillRect(below, QColor(0, 0, 0, 130))
        self._vline(painter, plot, x_of(1.0), QColor(255, 255, 255, 90), Qt.PenStyle.DotLine)
        if self.thresholds is not None and c < len(self.thresholds):
            self._vline(painter, plot, x_of(self.thresholds[c]), QColor("white"), Qt.PenStyle.SolidLine)
        painter.setPen(QColor(TEXT_COLOR))
        painter.drawText(tile.adjusted(3, 0, -2, 0), int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop),
                         self.names[c])

    @staticmethod
    def _vline(painter: QPainter, plot: QRectF, x: float, color: QColor, style) -> None:
        pen = QPen(color)
        pen.setWidthF(1.2)
        pen.setStyle(style)
        painter.setPen(pen)
        painter.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
