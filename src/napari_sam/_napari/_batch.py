"""Batch widget: run the ``napari-sam label`` command-line job over files, one process per file, with
a napari progress bar; the written label files can be opened in the viewer.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

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
from napari_sam._napari._workers import JobCancelled, make_progress_relay, report_error

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".zarr")


def cli_label_available() -> bool:
    """Whether this napari-sam has the ``label`` sub-command (napari_sam._cli.label)."""
    import importlib.util

    try:
        return importlib.util.find_spec("napari_sam._cli.label") is not None
    except (ImportError, ValueError):
        return False


def label_command(
    inputs: list[str],
    outdir: str,
    model: str | None = None,
    device: str | None = None,
    fmt: str = "tiff",
    auto_mode: str | None = None,
) -> list[str]:
    """The command line of one batch job: ``python -m napari_sam._cli.main label INPUT... -o OUTDIR``."""
    cmd = [
        sys.executable,
        "-m",
        "napari_sam._cli.main",
        "label",
        *inputs,
        "-o",
        outdir,
        "--format",
        fmt,
        "--no-progress",
    ]
    if model:
        cmd += ["--model", model]
    if device and device != "auto":
        cmd += ["--device", device]
    if auto_mode:
        cmd += ["--auto-mode", auto_mode]
    return cmd


def run_batch(
    files: list[str],
    outdir: str,
    model: str | None,
    device: str | None,
    progress,
    fmt: str = "tiff",
    auto_mode: str | None = None,
    poll_s: float = 0.2,
) -> list[str]:
    """Label ``files`` one process at a time; ``progress(done, total)`` after each (it may raise to
    cancel: the running process is terminated). Returns the new entries of ``outdir`` (files, or
    folders for OME-Zarr).
    """
    if not files:
        raise ValueError("no input files: add images to label")
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.iterdir())
    progress(0, len(files))
    for i, path in enumerate(files):
        proc = subprocess.Popen(
            label_command([path], str(out), model, device, fmt, auto_mode),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        while proc.poll() is None:
            try:
                progress(i, len(files))
            except JobCancelled:
                proc.terminate()
                proc.wait(timeout=10)
                raise
            time.sleep(poll_s)
        stdout, stderr = proc.communicate()
        if proc.returncode != 0:
            lines = [ln.strip() for ln in (stdout + "\n" + stderr).splitlines() if ln.strip()]
            reasons = [ln for ln in lines if ln.startswith("failed:") or "error" in ln.lower()]
            raise ValueError(
                f"labeling {Path(path).name} failed (exit {proc.returncode}): "
                f"{(reasons or lines or ['no message'])[-1]}"
            )
        progress(i + 1, len(files))
    return sorted(str(p) for p in set(out.iterdir()) - before if not p.name.startswith("."))


class BatchWidget(JobWidget):
    """Label a list of image files with the command-line job and write the results to a folder."""

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
        if not cli_label_available():
            self.set_status("This napari-sam has no 'label' command (napari_sam._cli.label) yet.")
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
        buttons.addWidget(self.cancel_btn)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Images"))
        layout.addWidget(self.files)
        layout.addLayout(row)
        layout.addLayout(form)
        layout.addWidget(self.open_results)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        self.add_btn.clicked.connect(self._add_dialog)
        self.clear_btn.clicked.connect(self.files.clear)
        self.browse_btn.clicked.connect(self._out_dialog)
        self.written: list[str] = []

    def add_files(self, paths) -> None:
        for p in paths:
            self.files.addItem(str(p))

    def file_list(self) -> list[str]:
        return [self.files.item(i).text() for i in range(self.files.count())]

    def _add_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Images to label", "", "Images (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ")"
        )
        self.add_files(paths)

    def _out_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder")
        if path:
            self.outdir.setText(path)

    def run(self):
        """Start the batch in a worker; returns it (None if the input was refused)."""
        files, outdir = self.file_list(), self.outdir.text().strip()
        try:
            if not cli_label_available():
                raise ValueError(
                    "batch labeling needs the 'napari-sam label' command, which this installation "
                    "does not have yet"
                )
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
        callback, relay = make_progress_relay("napari-sam: batch labeling")
        model, device = self.model_combo.currentText().strip(), self.device_combo.currentText()
        fmt = self.format_combo.currentText()
        auto_mode = None if self.mode_combo.currentIndex() == 0 else self.mode_combo.currentText()
        started = time.perf_counter()

        def done(written):
            self.written = list(written)
            self.set_status(
                f"Labeled {len(files)} file(s) in {time.perf_counter() - started:.0f} s → {outdir}"
            )
            if self.open_results.isChecked():
                self._open(written)

        return self.start_job(
            run_batch,
            files,
            outdir,
            model,
            device,
            callback,
            fmt,
            auto_mode,
            relay=relay,
            what="batch labeling",
            on_return=done,
            busy_text=f"Labeling {len(files)} file(s) …",
        )

    def _open(self, written: list[str]) -> None:
        import tifffile

        for path in written:
            if path.lower().endswith((".tif", ".tiff")):
                try:
                    self.viewer.add_labels(tifffile.imread(path), name=Path(path).stem)
                except (OSError, ValueError) as err:
                    report_error(f"opening {path}", err, self.set_status)
