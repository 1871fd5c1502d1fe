"""Batch widget: label a list of image files with the core's batch job
(:func:`napari_sam.batch.run.run_batch`) in a napari worker, with per-plane progress in the dock and
in napari's progress bar, and Cancel (finished files are kept); the written label files can be opened
in the viewer. Errors are the core's own exceptions and per-file failures.
"""

from __future__ import annotations

import time
from pathlib import Path

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
)

from napari_sam._napari._choosers import device_combo, model_combo
from napari_sam._napari._job_widget import JobWidget
from napari_sam._napari._workers import make_progress_relay, report_error
from napari_sam.io.images import file_dialog_filter


def label_files(
    files: list[str],
    outdir: str,
    model: str | None,
    device: str | None,
    progress,
    should_stop,
    fmt: str = "tiff",
    auto_mode: str | None = None,
    on_plane=None,
):
    """Run the core batch job over ``files`` (in the calling thread); returns its
    :class:`~napari_sam.batch.plan.BatchReport`. ``progress(done, total)`` after every plane;
    ``should_stop()`` is asked after every plane (then :class:`~napari_sam.embeddings.embedder.Cancelled`);
    ``on_plane(input, plane, planes)`` names the plane just labelled.
    """
    from napari_sam.batch.run import BatchConfig, run_batch
    from napari_sam.models.registry import DEFAULT_MODEL

    if not files:
        raise ValueError("no input files: add images to label")
    config = BatchConfig(
        outdir, fmt=fmt, model=model or DEFAULT_MODEL, device=device or "auto", auto_mode=auto_mode
    )
    return run_batch(
        files, config, progress=progress, should_stop=should_stop, log=lambda line: None, on_plane=on_plane
    )


class BatchWidget(JobWidget):
    """Label a list of image files with the core batch job and write the results to a folder."""

    plane_done = Signal(str, int, int)  # (input file, plane, planes) from the worker, queued to main

    def __init__(self, napari_viewer, parent=None) -> None:
        super().__init__("Run batch", parent)
        self.viewer = napari_viewer
        self.files = QListWidget()
        self.add_btn = QPushButton("Add files…")
        self.clear_btn = QPushButton("Clear list")
        self.outdir = QLineEdit()
        self.outdir.setPlaceholderText("output folder")
        self.browse_btn = QPushButton("…")
        self.model_combo = model_combo()
        self.device_combo = device_combo()
        self.format_combo = QComboBox()
        self.format_combo.addItems(["tiff", "ome-zarr"])
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(["model default", "points", "boxes"])
        self.open_results = QCheckBox("Open the label images when done")
        self.open_results.setChecked(True)
        row = QHBoxLayout()
        row.addWidget(self.add_btn)
        row.addWidget(self.clear_btn)
        out_row = QHBoxLayout()
        out_row.addWidget(self.outdir)
        out_row.addWidget(self.browse_btn)
        form = QFormLayout()
        form.addRow("Output", out_row)
        form.addRow("Model", self.model_combo)
        form.addRow("Device", self.device_combo)
        form.addRow("Automatic mode", self.mode_combo)
        form.addRow("Format", self.format_combo)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_btn)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Images"))
        layout.addWidget(self.files)
        layout.addLayout(row)
        layout.addLayout(form)
        layout.addWidget(self.open_results)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        self.add_btn.clicked.connect(self._add_dialog)
        self.clear_btn.clicked.connect(self.files.clear)
        self.browse_btn.clicked.connect(self._out_dialog)
        self.written: list[str] = []
        self.report = None
        self.plane_done.connect(self._show_plane)

    def _show_plane(self, path: str, plane: int, planes: int) -> None:
        """The progress panel's detail line: the file and plane just labelled."""
        if self._worker is None:
            return
        where = f"plane {plane + 1}/{planes}" if planes > 1 else "its only plane"
        self.progress.set_detail(f"{Path(path).name}: {where} done")

    def add_files(self, paths) -> None:
        for p in paths:
            self.files.addItem(str(p))

    def file_list(self) -> list[str]:
        return [self.files.item(i).text() for i in range(self.files.count())]

    def _add_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Images to label", "", file_dialog_filter())
        self.add_files(paths)

    def _out_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder")
        if path:
            self.outdir.setText(path)

    def run(self):
        """Start the batch in a worker; returns it (None if the input was refused)."""
        files, outdir = self.file_list(), self.outdir.text().strip()
        try:
            if not files:
                raise ValueError("no input files: add images to label")
            if not outdir:
                raise ValueError("choose an output folder")
            missing = [f for f in files if not Path(f).exists()]
            if missing:
                raise ValueError(f"{len(missing)} input file(s) do not exist, e.g. {missing[0]}")
        except ValueError as err:
            report_error("batch labeling", err, self.set_status)
            return None
        _, relay = make_progress_relay("napari-sam: batch labeling")
        model, device = self.model_combo.currentText().strip(), self.device_combo.currentText()
        fmt = self.format_combo.currentText()
        auto_mode = None if self.mode_combo.currentIndex() == 0 else self.mode_combo.currentText()
        started = time.perf_counter()

        def done(report):
            self.report = report
            self.written = [s["output"] for s in report.done]
            text = (
                f"Labeled {len(report.done)} file(s) in {time.perf_counter() - started:.0f} s → {outdir}"
                + (f"; {len(report.skipped)} already complete" if report.skipped else "")
            )
            if report.failed:
                text += f"; {len(report.failed)} failed: " + "; ".join(
                    f"{Path(name).name}: {message}" for name, message in report.failed
                )
                report_error("batch labeling", ValueError(text), self.set_status)
            else:
                self.set_status(text)
            if self.open_results.isChecked():
                self._open(self.written)

        def progress(done_planes: int, total: int) -> None:
            relay.step.emit(int(done_planes), int(total))

        return self.start_job(
            label_files,
            files,
            outdir,
            model,
            device,
            progress,
            lambda: relay.cancelled,
            fmt,
            auto_mode,
            self.plane_done.emit,
            relay=relay,
            what="batch labeling",
            on_return=done,
            busy_text=f"Labeling {len(files)} file(s) …",
            unit="planes",
        )

    def _open(self, written: list[str]) -> None:
        import tifffile

        for path in written:
            if path.lower().endswith((".tif", ".tiff")):
                try:
                    self.viewer.add_labels(tifffile.imread(path), name=Path(path).stem)
                except (OSError, ValueError) as err:
                    report_error(f"opening {path}", err, self.set_status)
