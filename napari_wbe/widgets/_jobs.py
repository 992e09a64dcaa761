"""The one way widgets run long work: off the GUI thread, with progress and cancel.

Core functions take a plain `progress(done, total)` callback. Here that callback forwards
to a Qt signal (delivered on the GUI thread) and raises `Cancelled` once the user cancels,
which unwinds the core function at its next report.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from napari.qt.threading import create_worker
from napari.utils import progress as napari_progress
from qtpy.QtCore import QObject, Signal


class Cancelled(Exception):
    """Raised inside a job's progress callback after the user pressed cancel."""


class _Signals(QObject):
    progressed = Signal(int, int)


class Job:
    """A running background job; `cancel()` stops it at its next progress report."""

    def __init__(self, description: str):
        self.description = description
        self._cancel = threading.Event()
        self.signals = _Signals()
        self.worker = None

    def report(self, done: int, total: int) -> None:
        if self._cancel.is_set():
            raise Cancelled(f"{self.description} was cancelled")
        self.signals.progressed.emit(int(done), int(total))

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()


def run_job(
    function: Callable[[Callable[[int, int], None]], Any],
    description: str,
    on_done: Callable[[Any], None],
    on_error: Callable[[Exception], None],
    on_progress: Callable[[int, int], None] | None = None,
) -> Job:
    """Run `function(report)` in a worker thread; callbacks run on the GUI thread.

    A napari progress bar (the activity dock) follows the job; `on_progress` lets the
    widget show it too. Cancellation is reported to `on_error` as `Cancelled`.
    """
    job = Job(description)
    bar = napari_progress(total=0, desc=description)

    def show(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)
        if on_progress is not None:
            on_progress(done, total)

    job.signals.progressed.connect(show)
    # Errors go to on_error (shown in the widget), not re-raised as tracebacks.
    worker = create_worker(function, job.report, _start_thread=False, _ignore_errors=True)
    worker.returned.connect(on_done)
    worker.errored.connect(on_error)
    worker.finished.connect(bar.close)
    job.worker = worker
    worker.start()
    return job
