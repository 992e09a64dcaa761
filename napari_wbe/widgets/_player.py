"""Playing activity frames on a layer: play, pause, scrub, speed, loop, and movie export.

Each frame is one colour table (`activity_colours`) handed to `paint`; the widget decides
what painting means (a label colour table, or point colours). A QTimer drives playback,
so the GUI stays live; the export steps through frames the same way, one per tick.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    PushButton,
    Slider,
    SpinBox,
)
from qtpy.QtCore import QTimer

from ..emulation.activity import SPIKES, VOLTAGE, ActivityFrames, activity_colours
from ..movie import MovieError, MovieWriter

FRAME_INTERVAL_MS = 40  # 25 frames per second of playback
# While playing, the slider, time and raster cursor follow at most this often: on software
# GL every redraw beside the canvas costs part of a frame. (napari's canvas text overlay
# cost a quarter of each frame, so the time is shown here and stamped on movie frames.)
LABELS_PER_SECOND = 8


class PlayControls(Container):
    """Play/pause, frame slider, ms per frame, loop, colouring mode, trial, export."""

    def __init__(self, on_frame: Callable[[int, float], None], say, screenshot: Callable[[], np.ndarray]):
        super().__init__(labels=True)
        self._on_frame = on_frame  # on_frame(frame, t_ms): label a painted frame
        self._say = say
        self._screenshot = screenshot  # the current view as an RGB(A) array
        self.frames: ActivityFrames | None = None
        self.roles: np.ndarray | None = None
        self.paint: Callable[[np.ndarray], None] | None = None
        self.result = None
        self.frame = 0
        self._labelled = 0.0  # when the frame was last labelled (slider, time stamp, cursor)
        self.play_button = PushButton(text="Play", enabled=False)
        self.time = Label(label="Time", value="–")
        self.slider = Slider(label="Frame", value=0, min=0, max=0, tracking=True)
        self.frame_ms = FloatSpinBox(label="ms per frame", value=1.0, min=0.1, max=100.0, step=0.5,
                                     tooltip="Model time between frames: 1 ms at 25 frames/s is 1/40 real time")
        self.loop = CheckBox(text="Loop", value=True)
        self.mode = ComboBox(label="Colour by", choices=[SPIKES, VOLTAGE], value=SPIKES)
        self.trial = SpinBox(label="Trial", value=0, min=0, max=0)
        self.movie = FileEdit(label="Movie", mode="w", filter="*.mp4 *.gif", value="",
                              tooltip="An .mp4 or .gif of the current view, the model time stamped on each frame")
        self.fps = SpinBox(label="Movie fps", value=20, min=1, max=60)
        self.export_button = PushButton(text="Export movie", enabled=False)
        self.extend([self.play_button, self.time, self.slider, self.frame_ms, self.loop, self.mode, self.trial,
                     self.movie, self.fps, self.export_button])
        self.timer = QTimer(self.native)  # dies with the widget: no frame painted after closing
        self.timer.setInterval(FRAME_INTERVAL_MS)
        self.timer.timeout.connect(self._tick)
        self._export: tuple[MovieWriter, int] | None = None
        self.play_button.changed.connect(self.toggle)
        self.slider.changed.connect(self.show)
        for widget in (self.frame_ms, self.mode, self.trial):
            widget.changed.connect(self._reframe)
        self.export_button.changed.connect(self.export)

    # --- loading ----------------------------------------------------------------------
    def load(self, result, roles: np.ndarray, paint: Callable[[np.ndarray], None]) -> None:
        self.result, self.roles, self.paint = result, roles, paint
        self.trial.max = result.trials - 1
        self.mode.enabled = result.v is not None
        if result.v is None:
            self.mode.value = SPIKES
        self._reframe()
        for button in (self.play_button, self.export_button):
            button.enabled = True

    def _reframe(self, *_) -> None:
        """New frames for the chosen trial, mode and speed, at the same model time."""
        if self.result is None:
            return
        t = self.frames.time_ms(self.frame) if self.frames is not None else 0.0
        self.frames = ActivityFrames(self.result, trial=int(self.trial.value), frame_ms=float(self.frame_ms.value),
                                     mode=self.mode.value)
        self.slider.max = self.frames.n_frames - 1
        self.show(min(int(round(t / self.frames.frame_ms)), self.frames.n_frames - 1))

    # --- playing ----------------------------------------------------------------------
    def show(self, frame: int) -> None:
        if self.frames is None:
            return
        self.frame = int(np.clip(frame, 0, self.frames.n_frames - 1))
        self.paint(activity_colours(self.frames.values(self.frame), self.roles))
        now = time.monotonic()
        if self.playing and now - self._labelled < 1.0 / LABELS_PER_SECOND:
            return
        self._labelled = now
        self._label_frame()

    def _label_frame(self) -> None:
        """The slider, and the widget's time stamp and raster cursor, at the shown frame."""
        if self.slider.value != self.frame:
            with self.slider.changed.blocked():
                self.slider.value = self.frame
        self.time.value = self.time_stamp()
        self._on_frame(self.frame, self.frames.time_ms(self.frame))

    def time_stamp(self) -> str:
        return f"t = {self.frames.time_ms(self.frame):.1f} ms"

    @property
    def playing(self) -> bool:
        """Frames follow each other on the timer (not exporting, scrubbing or paused)."""
        return self.timer.isActive() and self._export is None

    def seek(self, t_ms: float) -> None:
        if self.frames is not None:
            self.show(int(round(t_ms / self.frames.frame_ms)))

    def toggle(self, *_) -> None:
        self.pause() if self.timer.isActive() else self.play()

    def play(self) -> None:
        if self.frames is not None and self._export is None:
            self.timer.start()
            self.play_button.text = "Pause"

    def pause(self) -> None:
        self.timer.stop()
        self.play_button.text = "Play"
        if self.frames is not None:  # labels that skipped frames while playing catch up
            self._label_frame()

    def _tick(self) -> None:
        if self._export is not None:
            self._export_step()
            return
        following = self.frame + 1
        if following >= self.frames.n_frames:
            if not self.loop.value:
                self.pause()
                return
            following = 0
        self.show(following)

    # --- movie export -----------------------------------------------------------------
    def export(self, *_) -> None:
        """Every frame of the trial (at the current speed) to the chosen file, as fast as
        screenshots come, one per tick; pressed again, it stops and writes nothing."""
        if self._export is not None:
            self._finish_export("Export stopped; no movie was written.", error=True, abort=True)
            return
        if self.frames is None:
            self._say("Run an emulation first; the movie shows its activity.", error=True)
            return
        try:
            writer = MovieWriter(self.movie.value, fps=int(self.fps.value))
        except MovieError as err:
            self._say(str(err), error=True)
            return
        self.pause()
        self._export = (writer, self.frame)
        self.play_button.enabled = False
        self.export_button.text = "Stop export"
        self.show(0)
        self.timer.setInterval(0)
        self.timer.start()

    def _export_step(self) -> None:
        writer, start = self._export
        try:
            writer.add(self._screenshot(), stamp=self.time_stamp())
        except MovieError as err:
            self._finish_export(f"{err}", error=True, abort=True)
            return
        if self.frame + 1 >= self.frames.n_frames:
            self._finish_export(f"Wrote {writer.n_frames} frames ({writer.size[1]}x{writer.size[0]}) to {writer.path}.")
            return
        self.show(self.frame + 1)
        self._say(f"Exporting frame {self.frame + 1} of {self.frames.n_frames}…")

    def _finish_export(self, message: str, error: bool = False, abort: bool = False) -> None:
        writer, start = self._export
        self.timer.stop()
        self.timer.setInterval(FRAME_INTERVAL_MS)
        writer.abort() if abort else writer.close()
        self._export = None
        self.play_button.enabled = True
        self.export_button.text = "Export movie"
        self.show(start)
        self._say(message, error=error)
