"""A small progress panel for the dock widgets: a progress bar, the progress line of
:class:`napari_sam.progress.ProgressClock` ("37 % · 163/441 tiles · about 2 min 10 s left"), a detail
line (which file and plane, the training phase) and a Cancel button, shown where the user looks (in the
dock itself, not only in napari's activity panel).
"""

from __future__ import annotations

from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from napari_sam.progress import ProgressClock, format_duration


class ProgressPanel(QWidget):
    """Progress of one long job: bar, percentage · count · time left, a detail line and Cancel.

    Call :meth:`start` when the job starts, :meth:`update` with each ``(done, total)`` report and
    :meth:`finish` when it ended (any outcome). The panel is hidden until the first :meth:`start`;
    after :meth:`finish` the bar and Cancel go away and the final text stays.

    Signals
    -------
    cancel_requested
        The user pressed Cancel (the button is disabled until the next :meth:`start`).
    changed(str, str)
        The progress line and the detail line, whenever either changed.
    """

    cancel_requested = Signal()
    changed = Signal(str, str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.bar.setMinimumWidth(120)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self._cancel)
        self.line = QLabel("")
        self.line.setWordWrap(True)
        self.detail = QLabel("")
        self.detail.setWordWrap(True)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_btn)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.line)
        layout.addWidget(self.detail)
        self._clock = ProgressClock()
        self.running = False
        self._text = ""
        self._started = 0.0
        # before the first report: a still bar and the seconds so far, once a second. Not Qt's animated
        # busy bar: it repaints the window many times a second, and under software OpenGL each repaint
        # holds the GIL long enough to starve the job's thread (segment everything took 4x as long)
        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._tick)
        self.setVisible(False)

    def start(self, unit: str = "steps", text: str = "", cancellable: bool = True) -> None:
        """A new job: an empty bar and ``text`` with the seconds so far until the first report gives a
        total; Cancel enabled if ``cancellable``.
        """
        import time

        self._clock = ProgressClock(unit)
        self.running = True
        self._text, self._started = text, time.monotonic()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setFormat("starting …")
        self.bar.setVisible(True)
        self._ticker.start()
        self.cancel_btn.setVisible(cancellable)
        self.cancel_btn.setEnabled(cancellable)
        self.line.setText(text)
        self.detail.setText("")
        self.detail.setVisible(False)
        self.setVisible(True)
        self._changed()

    def set_unit(self, unit: str) -> None:
        """Count a different kind of step from now on (a new phase); the time estimate starts afresh."""
        if unit != self._clock.unit:
            self._clock = ProgressClock(unit)

    def update(self, done: int, total: int, eta_s: float | None = None) -> None:
        """``done`` of ``total`` steps: the bar and the line; ``eta_s`` (seconds left, when the job knows
        better than the mean step time, e.g. a time budget) replaces the clock's estimate.
        """
        if not self.running or total <= 0:
            return
        done = max(0, min(int(done), int(total)))
        self._ticker.stop()
        self.bar.setFormat("%p%")
        self.bar.setRange(0, int(total))
        self.bar.setValue(done)
        line = self._clock.text(done, int(total))
        if eta_s is not None:
            line = line.split(" · about ")[0]
            if done < total:
                line += f" · about {format_duration(eta_s)} left"
        self.line.setText(line)
        self._changed()

    def set_detail(self, text: str) -> None:
        """The second line: which file and plane, the phase of a training run."""
        self.detail.setText(text)
        self.detail.setVisible(bool(text))
        self._changed()

    def finish(self, text: str = "") -> None:
        """The job ended: the bar and Cancel go away, ``text`` stays (the panel hides if it is empty)."""
        self.running = False
        self._ticker.stop()
        self.bar.setVisible(False)
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.setVisible(False)
        self.line.setText(text)
        self.detail.setVisible(False)
        self.setVisible(bool(text))
        self._changed()

    def _tick(self) -> None:
        """No report yet: the start text and the seconds so far."""
        import time

        if not self.running:
            self._ticker.stop()
            return
        elapsed = format_duration(time.monotonic() - self._started)
        self.line.setText(f"{self._text} {elapsed}".strip())
        self._changed()

    def _changed(self) -> None:
        self.changed.emit(self.line.text(), "" if self.detail.isHidden() else self.detail.text())

    def _cancel(self) -> None:
        self.cancel_btn.setEnabled(False)
        self.line.setText(self.line.text() + " · cancelling …")
        self._changed()
        self.cancel_requested.emit()
