"""A small progress panel for the dock widgets: a progress bar, the progress line of
:class:`napari_sam.progress.ProgressClock` ("37 % · 163/441 tiles · about 2 min 10 s left"), a detail
line (which file and plane, the training phase) and a Cancel button, shown where the user looks (in the
dock itself, not only in napari's activity panel).
"""

from __future__ import annotations

from qtpy.QtCore import Signal
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
        self.setVisible(False)

    def start(self, unit: str = "steps", text: str = "", cancellable: bool = True) -> None:
        """A new job: a busy bar (no total yet), ``text`` as the line, Cancel enabled if ``cancellable``."""
        self._clock = ProgressClock(unit)
        self.running = True
        self.bar.setRange(0, 0)  # busy until the first report gives a total
        self.bar.setVisible(True)
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
        self.bar.setVisible(False)
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.setVisible(False)
        self.line.setText(text)
        self.detail.setVisible(False)
        self.setVisible(bool(text))
        self._changed()

    def _changed(self) -> None:
        self.changed.emit(self.line.text(), "" if self.detail.isHidden() else self.detail.text())

    def _cancel(self) -> None:
        self.cancel_btn.setEnabled(False)
        self.line.setText(self.line.text() + " · cancelling …")
        self._changed()
        self.cancel_requested.emit()
