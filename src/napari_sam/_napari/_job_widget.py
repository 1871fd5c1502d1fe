"""A dock widget that runs one long job at a time in a worker, with a Run button and, in the dock
itself, a progress panel (bar, percentage · count · time left, a detail line, Cancel).
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtWidgets import QLabel, QPushButton, QWidget

from napari_sam._napari._dock_view import ResetViewOnFirstShow
from napari_sam._napari._progress_panel import ProgressPanel
from napari_sam._napari._workers import start_worker


class JobWidget(QWidget):
    """Base for widgets with a ``run_btn``, a ``progress`` panel (with its ``cancel_btn``) and a
    ``status`` label; subclasses lay them out.

    :meth:`start_job` runs ``fn(*args)`` in a worker, disables Run and shows the progress panel (bar,
    :class:`~napari_sam.progress.ProgressClock` line, Cancel) until it ends, and closes the progress
    relay (from ``make_progress_relay``) whatever the outcome.
    """

    def __init__(self, run_text: str, parent=None) -> None:
        super().__init__(parent)
        self.run_btn = QPushButton(run_text)
        self.progress = ProgressPanel()
        self.cancel_btn = self.progress.cancel_btn
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.run_btn.clicked.connect(self.run)
        self.progress.cancel_requested.connect(self.cancel)
        self._fit_when_docked = ResetViewOnFirstShow(self, lambda: getattr(self, "viewer", None))
        self._worker = None
        self._relay = None
        self._busy_text = ""

    def run(self):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    def show_progress(self, done: int, total: int) -> None:
        """``done`` of ``total`` steps in the progress panel (main thread; the relay's steps arrive here)."""
        if total > 0 and self._worker is not None:
            self.progress.update(done, total)

    def start_job(
        self,
        fn: Callable,
        *args,
        relay,
        what: str,
        on_return: Callable,
        busy_text: str,
        unit: str = "steps",
    ):
        """Start ``fn(*args)`` in a worker; returns the worker. ``unit`` names a step in the progress line."""

        def finished():
            relay.close()
            self._worker = None
            self.run_btn.setEnabled(True)
            self.progress.finish("")

        self._relay = relay
        self._busy_text = busy_text
        step = getattr(relay, "step", None)
        if step is not None:
            step.connect(self.show_progress)  # a bound method of this widget: queued to the main thread
        self.run_btn.setEnabled(False)
        self.progress.start(unit, busy_text)
        self.set_status(busy_text)
        self._worker = start_worker(
            fn, *args, what=what, on_return=on_return, on_finish=finished, status=self.set_status
        )
        return self._worker

    def cancel(self) -> None:
        """Ask the running job to stop at its next progress report."""
        if self._relay is not None:
            self._relay.cancel()
