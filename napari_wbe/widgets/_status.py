"""The progress bar and message line at the bottom of every napari-wbe widget."""

from __future__ import annotations

from magicgui.widgets import Container, Label, ProgressBar
from qtpy.QtWidgets import QSizePolicy

ERROR_STYLE = "color: #ff6b6b;"


class StatusArea(Container):
    """Shows a job's progress, then what happened; errors in red, never as tracebacks."""

    def __init__(self):
        super().__init__(labels=False)
        self.bar = ProgressBar(value=0, max=1, visible=False)
        self.message = Label(value="")
        self.message.native.setWordWrap(True)
        # room for a three-line message even when a tall widget above squeezes the dock
        self.message.native.setMinimumHeight(3 * self.message.native.fontMetrics().lineSpacing() + 4)
        self.message.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        self.extend([self.bar, self.message])

    def busy(self, text: str) -> None:
        self.bar.value = 0
        self.bar.visible = True
        self.say(text)

    def progress(self, done: int, total: int) -> None:
        self.bar.max = max(total, 1)
        self.bar.value = min(done, self.bar.max)

    def say(self, text: str, error: bool = False) -> None:
        self.message.value = text
        self.message.native.setStyleSheet(ERROR_STYLE if error else "")

    def done(self, text: str, error: bool = False) -> None:
        self.bar.visible = False
        self.say(text, error)

    @property
    def text(self) -> str:
        return self.message.value
