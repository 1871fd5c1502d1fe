"""Segment-everything widget: the automatic mode of the core on the shown plane, or on every plane of a
stack with its objects linked through z → a Labels layer.
"""

from __future__ import annotations

import math
import time

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
)

from napari_sam._napari._choosers import ImageLayerCombo, LabelsLayerCombo, device_combo, model_combo
from napari_sam._napari._job_widget import JobWidget
from napari_sam._napari._layers import check_image_layer, current_plane, plane_data, transform_kwargs
from napari_sam._napari._workers import make_progress_relay, report_error

MODES = ("model default", "points", "boxes")
POLARITIES = ("auto", "bright", "dark")
BACKGROUND_CHOICES = {"auto": "auto", "flatten": True, "as is": False}  # shown → BoxModeParams.flatten
NOISE_CHOICES = {"auto": "auto", "denoise": True, "as is": False}  # shown → BoxModeParams.denoise
NO_EXAMPLES = "none"
SCOPES = ("this plane", "whole stack (3D)")
BOX_ONLY = {"min_area", "max_area", "polarity", "flatten", "denoise"}  # settings of box proposals only
MAX_DIAMETER = 100_000  # pixels: the size spin boxes' range


def _defaults(kind: str):
    from napari_sam.automatic.box_mode import BoxModeParams
    from napari_sam.automatic.point_grid import PointGridParams

    return PointGridParams() if kind == "points" else BoxModeParams()


def diameter_to_area(diameter: float) -> int:
    """The area in pixels of a disc ``diameter`` pixels across (at least 1)."""
    return max(1, round(math.pi * diameter * diameter / 4.0))


def size_settings(smallest: float, largest: float) -> dict:
    """Box mode's ``min_area`` / ``max_area`` from the smallest and largest object diameters in pixels
    (0: automatic, left out); ``ValueError`` when the smallest is larger than the largest.
    """
    if smallest < 0 or largest < 0:
        raise ValueError(f"object diameters are pixels ≥ 0 (0 = automatic); got {smallest} and {largest}")
    if smallest and largest and smallest > largest:
        raise ValueError(
            f"the smallest object ({smallest:g} px across) is larger than the largest ({largest:g} px): no "
            "object could pass; make the smallest at most the largest, or set either to auto (0)"
        )
    out = {}
    if smallest:
        out["min_area"] = diameter_to_area(smallest)
    if largest:
        out["max_area"] = diameter_to_area(largest)
    return out


class SegmentEverythingWidget(JobWidget):
    """Label every object of the shown plane of an image with ``napari_sam.automatic``, or of every
    plane of a stack (scope "whole stack (3D)": :func:`~napari_sam.automatic.segment_stack`, one id per
    object through the planes).

    The result is a new Labels layer "<image> SAM everything" with the image's transform (a stack
    gets a stack-shaped layer with the plane, or every plane, filled).
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
        self.polarity_combo = _choice_combo(
            list(POLARITIES),
            "How objects look against their surroundings (box proposals): auto decides per image "
            "(stained H&E/IHC images are read through their haematoxylin stain); bright: e.g. "
            "fluorescent nuclei; dark: e.g. stained nuclei or cells in brightfield",
        )
        self.background_combo = _choice_combo(
            list(BACKGROUND_CHOICES),
            "Uneven illumination or background (box proposals): auto flattens the image the proposals "
            "read when a global threshold would miss many objects (e.g. in a dim corner); flatten: always; "
            "as is: never. The model always sees the original pixels",
        )
        self.noise_combo = _choice_combo(
            list(NOISE_CHOICES),
            "Noisy images (box proposals): auto denoises (non-local means) when the objects stand less "
            "than five noise levels above their background, e.g. dim fluorescence; denoise: always; "
            "as is: never. The model and the proposals then both see the denoised image",
        )
        box = _defaults("boxes")
        self.smallest_spin = _size_spin(
            "Objects smaller than this (diameter in pixels) are dropped. auto: a quarter of the typical "
            "object's diameter (its area / 16, at least 6 pixels), or learnt from the examples"
        )
        self.largest_spin = _size_spin(
            "Objects larger than this (diameter in pixels) are dropped. auto: no limit but a quarter of the "
            "image, or learnt from the examples"
        )
        self.iou_spin = _fraction_spin(
            box.pred_iou_thresh,
            "Drop masks whose predicted IoU (the model's own quality estimate) is below this. "
            f"Default {box.pred_iou_thresh:g} for box proposals, {_defaults('points').pred_iou_thresh:g} for "
            "the point grid; higher keeps fewer, surer objects. Box proposals go lower where the model "
            "scores this image's typical objects (or the examples) low: 0.1 under their median, said in "
            "the status",
        )
        from napari_sam.automatic.box_mode import RIM_STABILITY_FLOOR

        self.stability_spin = _fraction_spin(
            box.stability_thresh,
            "Drop masks that change much when the mask threshold moves (stability score below this). "
            f"Default {box.stability_thresh:g} for box proposals, {_defaults('points').stability_thresh:g} "
            f"for the point grid. Box proposals allow small objects {box.rim_allowance:g} px of soft rim: "
            f"their threshold is lowered (never below {RIM_STABILITY_FLOOR:g}) and the summary says to what",
        )
        self.examples_combo = LabelsLayerCombo(napari_viewer, none_text=NO_EXAMPLES)
        self.examples_combo.setToolTip(
            "Box proposals: find objects like those of this Labels layer (on the plane in view): their size, "
            "size range and polarity set the search, and they are kept under their own labels in the result. "
            "Settings given here (polarity, sizes) win over what is learnt from them"
        )
        self.scope_combo = _choice_combo(
            list(SCOPES),
            "A stack: segment the plane in view, or every plane with each object's planes linked under "
            "one id (3D labels; one polarity, object size and zoom read from the planes with most "
            "contrast serve them all)",
        )
        sizes = QHBoxLayout()
        sizes.addWidget(self.smallest_spin)
        sizes.addWidget(QLabel("to"))
        sizes.addWidget(self.largest_spin)
        form = QFormLayout()
        form.addRow("Image", self.image_combo)
        form.addRow("Model", self.model_combo)
        form.addRow("Device", self.device_combo)
        form.addRow("Mode", self.mode_combo)
        form.addRow("Scope", self.scope_combo)
        self._form = form
        form.addRow("Objects", self.polarity_combo)
        form.addRow("Background", self.background_combo)
        form.addRow("Noise", self.noise_combo)
        form.addRow("Object size (diameter, px)", sizes)
        form.addRow("Predicted IoU ≥", self.iou_spin)
        form.addRow("Stability ≥", self.stability_spin)
        form.addRow("Like the objects in", self.examples_combo)
        self._box_only = (
            self.polarity_combo,
            self.background_combo,
            self.noise_combo,
            self.smallest_spin,
            self.largest_spin,
            self.examples_combo,
        )
        self._shown_kind = "boxes"  # whose defaults the threshold boxes show
        self.mode_combo.currentIndexChanged.connect(self._on_mode_changed)
        self.model_combo.currentTextChanged.connect(self._on_mode_changed)
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
        self.result_info: dict | None = None
        self._on_mode_changed()
        self.image_combo.currentTextChanged.connect(self._on_image_changed)
        napari_viewer.layers.events.inserted.connect(self._on_image_changed)
        self._on_image_changed()

    def _on_image_changed(self, *_) -> None:
        """The scope choice is offered for a stack (one axis of planes) only."""
        layer = self.image_combo.layer()
        try:
            is_stack = layer is not None and len(check_image_layer(layer).lead_shape) == 1
        except ValueError:
            is_stack = False
        if hasattr(self._form, "setRowVisible"):  # Qt ≥ 6.4
            self._form.setRowVisible(self.scope_combo, is_stack)
        else:
            self.scope_combo.setVisible(is_stack)
            label = self._form.labelForField(self.scope_combo)
            if label is not None:
                label.setVisible(is_stack)
        if not is_stack:
            self.scope_combo.setCurrentIndex(0)

    def whole_stack(self) -> bool:
        """True when the whole stack is to be segmented (the scope offered and chosen)."""
        return self.scope_combo.currentText() == SCOPES[1]

    # -- settings ----------------------------------------------------------------------------------
    def mode_kind(self) -> str | None:
        """The mode to run, "points" or "boxes": the chosen one, or the model's default (None when the
        model is a checkpoint file, whose default is known only once it is loaded).
        """
        from napari_sam.models.registry import MODELS

        if self.mode_combo.currentIndex() > 0:
            return self.mode_combo.currentText()
        spec = MODELS.get(self.model_combo.currentText().strip())
        return None if spec is None else spec.auto_mode

    def _on_mode_changed(self, *_) -> None:
        """Box-mode settings are off for the point grid; untouched thresholds show the mode's defaults."""
        kind = self.mode_kind()
        for widget in self._box_only:
            widget.setEnabled(kind != "points")
        shown = "points" if kind == "points" else "boxes"
        if shown != self._shown_kind:
            old, new = _defaults(self._shown_kind), _defaults(shown)
            for spin, name in ((self.iou_spin, "pred_iou_thresh"), (self.stability_spin, "stability_thresh")):
                if abs(spin.value() - getattr(old, name)) < 1e-9:
                    spin.setValue(getattr(new, name))
            self._shown_kind = shown

    def settings(self) -> dict:
        """The parameters the user set (a dict of overrides for the mode's parameter class; untouched
        thresholds and automatic sizes are left out, so the mode's own defaults apply); ``ValueError``
        for settings no object could pass.
        """
        shown = _defaults(self._shown_kind)
        params = {
            name: round(spin.value(), 4)
            for spin, name in ((self.iou_spin, "pred_iou_thresh"), (self.stability_spin, "stability_thresh"))
            if abs(spin.value() - getattr(shown, name)) > 1e-9
        }
        if self.mode_kind() != "points":
            params.update(size_settings(self.smallest_spin.value(), self.largest_spin.value()))
            if self.polarity_combo.currentText() != "auto":
                params["polarity"] = self.polarity_combo.currentText()
            if self.background_combo.currentText() != "auto":
                params["flatten"] = BACKGROUND_CHOICES[self.background_combo.currentText()]
            if self.noise_combo.currentText() != "auto":
                params["denoise"] = NOISE_CHOICES[self.noise_combo.currentText()]
        return params

    def examples(self, info, plane) -> np.ndarray | None:
        """The chosen examples layer's objects on ``plane`` (None: none chosen, or the point grid), checked
        against the image's plane shape (``ValueError`` naming it).
        """
        from napari_sam.automatic.examples import check_examples

        layer = self.examples_combo.layer()
        if layer is None or self.mode_kind() == "points":
            return None
        data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
        if info.lead_shape and tuple(data.shape[:-2]) == tuple(info.lead_shape):
            data = data[tuple(plane)]
        try:
            return check_examples(np.asarray(data), tuple(info.spatial_shape))
        except ValueError as err:
            raise ValueError(f"examples from {layer.name!r}: {err}") from None

    def run(self):
        """Start the job in a worker; returns the worker (None if the input was refused)."""
        try:
            layer = self.image_combo.layer()
            info = check_image_layer(layer)
        except ValueError as err:
            report_error("segment everything", err, self.set_status)
            return None
        plane = current_plane(layer, info, self.viewer.dims.point)
        try:
            params = self.settings()
            examples = self.examples(info, plane)
            every = len(info.lead_shape) == 1 and self.whole_stack()
            if every and examples is not None:
                raise ValueError(
                    "examples guide one plane: choose the scope 'this plane', or use the annotator's "
                    "'Find more like these' on all planes"
                )
            kind = self.mode_kind()
            if kind is not None:
                from napari_sam.automatic.everything import default_params

                default_params(kind, params)  # refused now, in the status, not after the model loaded
        except ValueError as err:
            report_error("segment everything", err, self.set_status)
            return None
        data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
        if every:
            return self._run_stack(layer, data, params)
        if len(info.lead_shape) == 1:  # a stack: the plane, scaled like the whole stack
            image, where = data, {"stack_axis": 0, "plane": plane[0]}
        else:
            image, where = plane_data(layer, info, plane), {}
        model_and_params, mode = self._model_and_params(params)
        callback, relay = make_progress_relay("napari-sam: segment everything")
        started = time.perf_counter()

        def job():
            from napari_sam.automatic import segment_everything

            net, p, boxes = model_and_params()
            return segment_everything(
                image,
                model=net,
                mode=mode,
                params=p or None,
                examples=examples if boxes else None,
                progress=callback,
                return_info=True,
                **where,
            )

        def done(result):
            labels, run_info = result
            self.result_info = run_info
            seconds = time.perf_counter() - started
            self._add_result(layer, info, plane, np.asarray(labels), seconds, run_info, examples)

        return self.start_job(
            job,
            relay=relay,
            what="segment everything",
            on_return=done,
            busy_text="Segmenting everything …",
            unit="windows",
        )

    def _model_and_params(self, params: dict):
        """``(load, mode)`` for a job: the chosen mode (None: the model's own), and ``load()`` (for the
        worker) → ``(model, params for its mode, whether that mode is box proposals)``, the model loaded
        once per name and device; box-only settings are left out for the point grid.
        """
        name, device = self.model_combo.currentText().strip(), self.device_combo.currentText()
        mode = None if self.mode_combo.currentIndex() == 0 else self.mode_combo.currentText()
        models = self._models

        def load():
            from napari_sam.models.loading import load_model

            if (name, device) not in models:
                models[(name, device)] = load_model(name, device=device)
            net = models[(name, device)]
            boxes = (mode or net.spec.auto_mode) == "boxes"
            return net, (params if boxes else {k: v for k, v in params.items() if k not in BOX_ONLY}), boxes

        return load, mode

    def _run_stack(self, layer, data, params: dict):
        """Segment every plane of the stack ``data`` in a worker, objects linked through z."""
        model_and_params, mode = self._model_and_params(params)
        callback, relay = make_progress_relay("napari-sam: segment everything (whole stack)")
        started = time.perf_counter()

        def job():
            from napari_sam.automatic import segment_stack

            net, p, _ = model_and_params()
            infos: list[dict] = []
            labels = segment_stack(
                data, model=net, mode=mode, params=p or None, progress=callback, infos=infos
            )
            return labels, infos

        def done(result):
            labels, infos = result
            self.result_info = infos[0] if infos else {}
            seconds = time.perf_counter() - started
            self._add_stack_result(layer, np.asarray(labels), seconds, infos)

        return self.start_job(
            job,
            relay=relay,
            what="segment everything",
            on_return=done,
            busy_text="Segmenting every plane …",
            unit="planes",
        )

    def _add_stack_result(self, layer, labels: np.ndarray, seconds: float, infos: list[dict]) -> None:
        from napari_sam.automatic.summary import describe_reading, why_empty

        name = f"{layer.name} SAM everything"
        if name in self.viewer.layers:
            self.viewer.layers.remove(name)
        self.result_layer = self.viewer.add_labels(
            labels.astype(np.int32, copy=False), name=name, opacity=0.5, **transform_kwargs(layer)
        )
        count = _object_count(labels)
        planes = labels.shape[0]
        if not count:
            self.set_status(
                f"no objects found in {planes} planes: {why_empty(infos)} ({seconds:.1f} s) → empty layer "
                f"{name!r}"
            )
            return
        reading = describe_reading(infos)
        read = f"; read as {reading}" if reading else ""
        self.set_status(
            f"{count} objects through {planes} planes (3D labels) in {seconds:.1f} s → layer {name!r}{read}"
        )

    def _add_result(
        self, layer, info, plane, labels: np.ndarray, seconds: float, run_info: dict, examples
    ) -> None:
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
        count = _object_count(labels)
        if not count:
            why = empty_reason(run_info.get("empty")) or "no mask passed the thresholds and size range"
            self.set_status(f"no objects found: {why} ({seconds:.1f} s) → empty layer {name!r}")
            return
        kept = 0 if examples is None else len(np.unique(examples[examples > 0]))
        found = f"{count} objects" + (f" ({kept} of them the examples)" if kept else "")
        from napari_sam.automatic.summary import describe_reading

        reading = describe_reading(run_info)
        read = f"; read as {reading}" if reading else ""
        self.set_status(f"{found} in {seconds:.1f} s → layer {name!r}{read}")


def _object_count(labels: np.ndarray) -> int:
    """How many distinct non-zero labels ``labels`` holds."""
    return len(np.unique(labels)) - (1 if (labels == 0).any() else 0)


def empty_reason(text: str | None) -> str:
    """The core's reason for an empty result without its "no objects" (:func:`why_empty`)."""
    from napari_sam.automatic.summary import why_empty

    return why_empty({"empty": text}) if text else ""


def _choice_combo(choices: list[str], tooltip: str) -> QComboBox:
    combo = QComboBox()
    combo.addItems(choices)
    combo.setToolTip(tooltip)
    return combo


def _size_spin(tooltip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(0, MAX_DIAMETER)
    spin.setSpecialValueText("auto")  # 0
    spin.setSuffix(" px")
    spin.setToolTip(tooltip)
    return spin


def _fraction_spin(value: float, tooltip: str) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(0.0, 1.0)
    spin.setSingleStep(0.05)
    spin.setDecimals(2)
    spin.setValue(value)
    spin.setToolTip(tooltip)
    return spin
