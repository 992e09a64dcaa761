"""The one way widgets run long work: off the GUI thread, with progress and cancel.

Core functions take a plain `progress(done, total)` callback. Here that callback forwards
to a Qt signal (delivered on the GUI thread) and raises `Cancelled` once the user cancels,
which unwinds the core function at its next report.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from napari.qt.threading import create_worker
from napari.utils import progress as napari_progress
from qtpy.QtCore import QObject, Signal

REPORTS_PER_SECOND = 20


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
        self._last_emit = 0.0

    def report(self, done: int, total: int) -> None:
        if self._cancel.is_set():
            raise Cancelled(f"{self.description} was cancelled")
        # at most REPORTS_PER_SECOND reach the GUI: thousands of fast reports would queue up
        # faster than the progress bar repaints (and nest inside its repaints)
        now = time.monotonic()
        if done >= total or now - self._last_emit >= 1.0 / REPORTS_PER_SECOND:
            self._last_emit = now
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


class JobHost:
    """Mixin for widgets that run one background job at a time.

    While a job runs, `busy_buttons()` are greyed out and the widget's `cancel` button (if
    it has one) is live; progress and the outcome go to its `status` (a StatusArea), a
    failure in red, a cancellation as "Cancelled.".
    """

    _job: Job | None = None

    def busy_buttons(self) -> list:
        return []

    def start_job(self, work, description: str, on_done) -> Job:
        self._set_busy(True)
        self.status.busy(f"{description}…")

        def finished(result) -> None:
            self._set_busy(False)
            on_done(result)

        self._job = run_job(work, description, finished, self._job_failed, self.status.progress)
        return self._job

    def cancel_job(self) -> None:
        if self._job is not None:
            self._job.cancel()

    def _job_failed(self, err: Exception) -> None:
        self._set_busy(False)
        cancelled = isinstance(err, Cancelled)
        self.status.done("Cancelled." if cancelled else str(err), error=not cancelled)

    def _set_busy(self, busy: bool) -> None:
        for button in self.busy_buttons():
            button.enabled = not busy
        if getattr(self, "cancel", None) is not None:
            self.cancel.enabled = busy
