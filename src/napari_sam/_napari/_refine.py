"""Refining an existing segmentation in the annotator: a Labels layer (a previous run, Cellpose, manual
painting) becomes the session's committed objects, ids kept; ``E`` with the mouse over an object starts
editing it (its mask is the preview and the mask prompt); clicks and boxes correct it; ``C`` commits it
back under its id; ``U`` undoes that. The rules of the correction are the core's
(:mod:`napari_sam.prediction.refine`); this module only connects napari's layers and keys to them.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from napari_sam._napari._annotator_layers import OBJECTS_SUFFIX
from napari_sam._napari._choosers import LabelsLayerCombo
from napari_sam._napari._layers import check_labels_data
from napari_sam._napari._workers import report_error
from napari_sam.prompts import Prompts

EDIT_KEY = "e"
_OWN_LAYERS = (OBJECTS_SUFFIX, " SAM preview", " SAM like committed")  # the annotator's own Labels layers


class RefineControls(QWidget):
    """The "Labels to refine" row: a Labels layer combo and a button that makes its objects the session's.

    Holds the object being edited (:attr:`editing`: the :class:`~napari_sam.prompts.Prompts` that start
    its correction, or None); the annotator asks :meth:`apply` to put the user's clicks and boxes on it.
    """

    def __init__(self, annotator, parent=None) -> None:
        super().__init__(parent)
        self.annotator = annotator
        self.editing: Prompts | None = None
        self.labels_combo = LabelsLayerCombo(annotator.viewer, exclude_suffixes=_OWN_LAYERS)
        self.labels_combo.setToolTip(
            "A segmentation to correct (a previous run, Cellpose, painted by hand); its objects keep their "
            "ids"
        )
        self.load_btn = QPushButton("Use as objects")
        self.load_btn.setToolTip(
            "Make this Labels layer's objects the committed objects; then E over an object edits it"
        )
        self.load_btn.clicked.connect(self.load_selected)
        row = QHBoxLayout()
        row.addWidget(QLabel("Labels to refine"))
        row.addWidget(self.labels_combo, 1)
        row.addWidget(self.load_btn)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)

    # -- loading -----------------------------------------------------------------------------------
    def load_selected(self) -> int | None:
        """Load the chosen Labels layer (see :meth:`load`); the number of objects, or None on an error."""
        layer = self.labels_combo.layer()
        if layer is None:
            problem = ValueError("add or choose a Labels layer to refine")
            report_error("refine", problem, self.annotator.set_status)
            return None
        return self.load(layer)

    def load(self, layer) -> int | None:
        """Make ``layer``'s objects the session's committed objects (ids kept; shown in the objects layer,
        ``layer`` is hidden). The number of objects, or None on an error (said in the status line).
        """
        a = self.annotator
        try:
            if a.session is None or a.session.annotations is None:
                raise ValueError("compute the image's embeddings first, then load the labels to refine")
            check_labels_data(layer)
            data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
            self.stop()
            a.clear_prompts()
            annotations = a.session.segmenter.load_labels(np.asarray(data))
        except ValueError as err:
            report_error("refine", err, a.set_status)
            return None
        layer.visible = False  # the objects layer shows the same objects now
        n = len(annotations.objects)
        a.set_status(
            f"{n} object{'s' if n != 1 else ''} from {layer.name!r} loaded: put the mouse over one and press "
            f"{EDIT_KEY.upper()} to correct it."
        )
        return n

    # -- editing -----------------------------------------------------------------------------------
    def edit_at_cursor(self) -> int:
        """Edit the object under the mouse (key ``E``); its id, or 0 when there is none."""
        a = self.annotator
        if a.session is None or a.image_layer is None:
            report_error("refine", ValueError("compute embeddings and load the labels first"), a.set_status)
            return 0
        world = np.asarray(a.viewer.cursor.position, dtype=float)
        data = np.asarray(a.image_layer.world_to_data(world), dtype=float)
        row, col = data[len(a.session.info.lead_shape) :][:2]
        plane = a._current_plane()
        obj_id = a.session.segmenter.object_at(row, col, plane)
        if obj_id == 0:
            a.set_status(f"No object under the mouse: point at one and press {EDIT_KEY.upper()}.")
            return 0
        return self.edit(obj_id)

    def edit(self, obj_id: int) -> int:
        """Start correcting committed object ``obj_id`` on the plane in view: its mask is the preview and
        the mask prompt; clicks and boxes correct it, ``C`` commits it under its id. Returns ``obj_id``
        (0 on an error, said in the status line).
        """
        a = self.annotator
        try:
            start = a.session.segmenter.refine_prompts(obj_id, a._current_plane())
        except ValueError as err:
            report_error("refine", err, a.set_status)
            return 0
        a.clear_prompts()
        self.editing = start
        a.request_preview()
        a.set_status(
            f"Editing object {obj_id}: click to add to it (Shift-click to remove), draw a box for its new "
            f"extent; C commits it under id {obj_id}, Shift-C stops editing."
        )
        return obj_id

    def apply(self, prompts: Prompts | None) -> Prompts | None:
        """The user's clicks and boxes (``prompts``) on the object being edited, or ``prompts`` itself
        when none is.
        """
        start = self.editing
        if start is None:
            return prompts
        if prompts is None:
            return None
        return Prompts(prompts.points, prompts.labels, prompts.boxes, start.mask, start.plane, start.refines)

    def stop(self) -> None:
        """Stop editing (after a commit, or when the prompts are cleared)."""
        self.editing = None
