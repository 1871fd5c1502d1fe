"""The "Train on my annotations" dock widget: fine-tune the model on the objects of a Labels layer (the
committed objects of the annotator, or any instance labels) in a worker, with progress, ETA and cancel.

The result is saved into the model cache under the chosen name, so it is listed by ``napari-sam models
list`` and its path can be chosen in every model box; held-out box mIoU before → after is shown. "Use this
model" switches the annotator docked in the same viewer to it (its committed objects kept; its embeddings
kept too after a decoder-only fine-tune of its model).
"""

from __future__ import annotations

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
)

from napari_sam._napari._annotator_layers import OBJECTS_SUFFIX
from napari_sam._napari._choosers import ImageLayerCombo, LabelsLayerCombo, device_combo, model_combo
from napari_sam._napari._job_widget import JobWidget
from napari_sam._napari._workers import make_progress_relay, report_error
from napari_sam.finetune.progress import validation_summary

PHASES = {
    "embedding": ("windows", "Phase 1 of 2: embedding the training windows"),
    "training": ("steps", "Phase 2 of 2: training"),
    "done": ("steps", "Done: saving the best model"),
}


def find_annotator(viewer):
    """The napari-sam annotator docked in ``viewer``, or None."""
    from napari_sam._napari._annotator import AnnotatorWidget

    for widget in viewer.window.dock_widgets.values():
        if isinstance(widget, AnnotatorWidget):
            return widget
    return None


def describe(p) -> str:
    """The phase of a :class:`~napari_sam.finetune.train.TrainingProgress` as one line (the progress
    panel's detail; the bar and its line show the count and the time left).
    """
    line = PHASES.get(p.stage, ("steps", p.stage))[1]
    if p.best_val_miou is not None and p.base_val_miou is not None:
        line += f" · held-out box mIoU {p.base_val_miou:.3f} (base) → {p.best_val_miou:.3f} (weights kept)"
    return line


class FinetuneWidget(JobWidget):
    """Fine-tune a model on an image layer and the objects of a Labels layer of the same shape."""

    message = Signal(str)  # the phase line of each progress report, queued to the main thread
    training = Signal(object)  # each TrainingProgress, queued to the main thread

    def __init__(self, napari_viewer, parent=None) -> None:
        super().__init__("Train on my annotations", parent)
        self.viewer = napari_viewer
        self.image_combo = ImageLayerCombo(napari_viewer)
        self.labels_combo = LabelsLayerCombo(napari_viewer, prefer_suffix=OBJECTS_SUFFIX)
        self.model_combo = model_combo()
        self.device_combo = device_combo()
        self.minutes = QDoubleSpinBox()
        self.minutes.setRange(0.1, 120.0)
        self.minutes.setValue(4.0)
        self.minutes.setSuffix(" min")
        self.adapters = QCheckBox("Adapt the image encoder too (LoRA, slower)")
        self.name_edit = QLineEdit("my-finetune")
        self.name_edit.setToolTip("Saved into the model cache under this name")
        self.result = QLabel("")
        self.result.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Image", self.image_combo)
        form.addRow("Objects (labels)", self.labels_combo)
        form.addRow("Base model", self.model_combo)
        form.addRow("Device", self.device_combo)
        form.addRow("Time budget", self.minutes)
        form.addRow("", self.adapters)
        form.addRow("Save as", self.name_edit)
        self.use_btn = QPushButton("Use this model")
        self.use_btn.setToolTip(
            "Switch the annotator to the fine-tuned model (committed objects kept; embeddings kept when only "
            "the decoder was trained)"
        )
        self.use_btn.setEnabled(False)
        self.use_btn.clicked.connect(self.use_model)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_btn)
        buttons.addWidget(self.use_btn)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.result)
        layout.addStretch(1)
        self.message.connect(self.progress.set_detail)
        self.training.connect(self._show_training)
        self.model = None  # the last fine-tuned model
        self.saved_path = None
        self._base_chosen = False  # the user picked a base model: stop following the annotator's
        self.model_combo.activated.connect(self._choose_base)
        self.model_combo.lineEdit().textEdited.connect(self._choose_base)

    def _choose_base(self, *_args) -> None:
        self._base_chosen = True

    def showEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        self.follow_annotator_model()

    def follow_annotator_model(self) -> str:
        """Start from the model the annotator uses (the one whose masks were corrected into these
        labels) until the user picks another base model; returns the base model shown.
        """
        annotator = None if self._base_chosen else find_annotator(self.viewer)
        if annotator is not None:
            current = annotator.model_combo.currentText().strip()
            if current and current != self.model_combo.currentText().strip():
                self.model_combo.setCurrentText(current)
        return self.model_combo.currentText().strip()

    def run(self):
        """Start the fine-tune in a worker; returns the worker (None when the input was refused)."""
        image_layer, labels_layer = self.image_combo.layer(), self.labels_combo.layer()
        if image_layer is None or labels_layer is None:
            report_error("train", ValueError("choose an image layer and a Labels layer"), self.set_status)
            return None
        image = image_layer.data[0] if getattr(image_layer, "multiscale", False) else image_layer.data
        labels = labels_layer.data[0] if getattr(labels_layer, "multiscale", False) else labels_layer.data
        base, device = self.model_combo.currentText().strip(), self.device_combo.currentText()
        minutes, adapters, name = (
            self.minutes.value(),
            self.adapters.isChecked(),
            self.name_edit.text().strip(),
        )
        _, relay = make_progress_relay("napari-sam: training")

        def progress(p) -> None:  # worker thread: no exceptions here, cancelling keeps the best model
            self.training.emit(p)
            self.message.emit(describe(p))

        def job():
            from napari_sam.finetune import finetune

            return finetune(
                image,
                labels,
                base=base,
                minutes=minutes,
                device=device,
                encoder_adapters=adapters,
                progress=progress,
                should_stop=lambda: relay.cancelled,
                name=name,
            )

        self.result.setText("")
        self.use_btn.setEnabled(False)
        return self.start_job(
            job,
            relay=relay,
            what="training",
            on_return=self._done,
            busy_text="Training on your objects …",
            unit="windows",
        )

    def _show_training(self, p) -> None:
        """One :class:`~napari_sam.finetune.train.TrainingProgress` in the panel: the phase's unit, its
        count and the trainer's own time estimate (it knows the time budget).
        """
        if self._worker is None:
            return
        self.progress.set_unit(PHASES.get(p.stage, ("steps", ""))[0])
        self.progress.update(int(p.done), int(p.total), eta_s=float(p.eta_s))

    def _done(self, model) -> None:
        self.model = model
        self.saved_path = model.checkpoint
        v, report, data = model.report["validation"], model.report, model.report["data"]
        self.set_status(f"Done ({report['stopped_by']}, {report['time']['total_s']:.0f} s).")
        left_out = data.get("objects_not_embedded", 0)
        note = (
            f" The time budget ran out while embedding: {left_out} of {data['objects']} objects were not "
            "used (more minutes would use them)."
            if left_out
            else ""
        )
        self.result.setText(
            f"{'H' + validation_summary(v)[1:]} ({data['val_objects']} objects).{note} Saved as "
            f"{report.get('name', '')!r}: {model.checkpoint}. "
            "'Use this model' switches the annotator to it."
        )
        self.use_btn.setEnabled(True)

    def use_model(self) -> str | None:
        """Switch the annotator docked in this viewer to the fine-tuned model (see
        :meth:`~napari_sam._napari._annotator.AnnotatorWidget.use_model`); returns the status line.
        """
        if self.model is None:
            self.set_status("Train a model first.")
            return None
        annotator = find_annotator(self.viewer)
        if annotator is None:
            self.set_status(
                "Open the annotator (Plugins › napari-sam › Annotator) to use this model, or choose its path "
                f"there: {self.saved_path}"
            )
            return None
        try:
            text = annotator.use_model(self.model, str(self.saved_path))
        except ValueError as err:
            report_error("switching the annotator's model", err, self.set_status)
            return None
        self.set_status(text)
        return text
