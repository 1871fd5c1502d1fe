"""Segment-everything widget: the automatic mode of the core on the shown plane → a Labels layer."""

from __future__ import annotations

import time

import numpy as np
from qtpy.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QVBoxLayout

from napari_sam._napari._choosers import ImageLayerCombo, device_combo, model_combo
from napari_sam._napari._job_widget import JobWidget
from napari_sam._napari._layers import check_image_layer, current_plane, plane_data, transform_kwargs
from napari_sam._napari._workers import make_progress_relay, report_error

MODES = ("model default", "points", "boxes")
POLARITIES = ("auto", "bright", "dark")


class SegmentEverythingWidget(JobWidget):
    """Label every object of the shown plane of an image with ``napari_sam.automatic``.

    The result is a new Labels layer "<image> SAM everything" with the image's transform (a stack
    gets a stack-shaped layer with the plane filled).
    """

    def __init__(self, napari_viewer, parent=None) -> None:
        super().__init__("Segment everything", parent)
        self.viewer = napari_viewer
        self.image_combo = ImageLayerCombo(napari_viewer)
        self.model_combo = model_combo()
        self.device_combo = device_combo()
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(list(MODES))
        self.mode_combo.setToolTip(
            "points: SAM's point grid; boxes: box proposals (for box-trained models "
            "such as LiteMedSAM); model default: what the model's registry entry says"
        )
        self.polarity_combo = QComboBox()
        self.polarity_combo.addItems(list(POLARITIES))
        self.polarity_combo.setToolTip(
            "How objects look against their surroundings (box proposals): auto decides per image "
            "(stained H&E/IHC images are read through their haematoxylin stain); bright: e.g. "
            "fluorescent nuclei; dark: e.g. stained nuclei or cells in brightfield"
        )
        form = QFormLayout()
        form.addRow("Image", self.image_combo)
        form.addRow("Model", self.model_combo)
        form.addRow("Device", self.device_combo)
        form.addRow("Mode", self.mode_combo)
        form.addRow("Objects", self.polarity_combo)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_btn)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self._models: dict = {}
        self.result_layer = None

    def run(self):
        """Start the job in a worker; returns the worker (None if the input was refused)."""
        try:
            layer = self.image_combo.layer()
            info = check_image_layer(layer)
        except ValueError as err:
            report_error("segment everything", err, self.set_status)
            return None
        plane = current_plane(layer, info, self.viewer.dims.point)
        data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
        if len(info.lead_shape) == 1:  # a stack: the plane, scaled like the whole stack
            image, where = data, {"stack_axis": 0, "plane": plane[0]}
        else:
            image, where = plane_data(layer, info, plane), {}
        name, device = self.model_combo.currentText().strip(), self.device_combo.currentText()
        mode = None if self.mode_combo.currentIndex() == 0 else self.mode_combo.currentText()
        polarity = self.polarity_combo.currentText()
        callback, relay = make_progress_relay("napari-sam: segment everything")
        models = self._models
        started = time.perf_counter()

        def job():
            from napari_sam.automatic import segment_everything
            from napari_sam.models.loading import load_model

            if (name, device) not in models:
                models[(name, device)] = load_model(name, device=device)
            net = models[(name, device)]
            boxes = (mode or net.spec.auto_mode) == "boxes"
            params = {"polarity": polarity} if boxes and polarity != "auto" else None
            return segment_everything(image, model=net, mode=mode, params=params, progress=callback, **where)

        def done(labels):
            self._add_result(layer, info, plane, np.asarray(labels), time.perf_counter() - started)

        return self.start_job(
            job,
            relay=relay,
            what="segment everything",
            on_return=done,
            busy_text="Segmenting everything …",
            unit="windows",
        )

    def _add_result(self, layer, info, plane, labels: np.ndarray, seconds: float) -> None:
        from napari_sam._napari._layers import check_labels_data

        full = np.zeros((*info.lead_shape, *info.spatial_shape), dtype=np.int32)
        full[tuple(plane)] = labels
        name = f"{layer.name} SAM everything"
        if name in self.viewer.layers and self.viewer.layers[name].data.shape == full.shape:
            target = self.viewer.layers[name]
            check_labels_data(target)
            target.data[tuple(plane)] = labels
            target.refresh()
        else:
            target = self.viewer.add_labels(full, name=name, opacity=0.5, **transform_kwargs(layer))
        self.result_layer = target
        count = len(np.unique(labels)) - (1 if (labels == 0).any() else 0)
        found = f"{count} objects" if count else "no objects found"
        self.set_status(f"{found} in {seconds:.1f} s → layer {name!r}")
