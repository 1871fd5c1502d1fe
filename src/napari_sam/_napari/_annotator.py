"""The annotator dock widget: choose an image, compute its embeddings, click and draw prompts, see
the preview, commit objects. A thin adapter: all segmentation happens in :class:`AnnotatorSession`
(and below it, :class:`~napari_sam.segmenter.Segmenter`).

Keys (viewer-wide, while a layer other than an Image is selected): ``C`` commit, ``Shift-C`` clear
the prompts, ``U`` undo the last commit, ``M`` cycle the three candidate masks, ``N`` toggle negative
points; Shift-click adds a negative point; ``E`` edits the object under the mouse (after "Use as
objects" made a Labels layer's objects the committed ones, see :mod:`napari_sam._napari._refine`).
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_sam._napari._annotator_embedding import AnnotatorEmbedding
from napari_sam._napari._annotator_layers import (
    PreviewPainter,
)
from napari_sam._napari._background import BackgroundEmbeddingPanel
from napari_sam._napari._choosers import ImageLayerCombo, device_combo, model_combo
from napari_sam._napari._dock_view import ResetViewOnFirstShow
from napari_sam._napari._layers import same_layer
from napari_sam._napari._like_committed import LikeCommittedPanel
from napari_sam._napari._preview import PreviewRuns
from napari_sam._napari._prompts import collect_prompts
from napari_sam._napari._refine import EDIT_KEY, RefineControls
from napari_sam._napari._session import AnnotatorSession
from napari_sam._napari._workers import make_progress_relay, report_error, start_worker
from napari_sam.prediction.clicks import (
    large_mask_note,
    new_object_prompts,
    new_object_text,
    starts_new_object,
)
from napari_sam.prediction.quality import candidate_scores, score_meaning


def _objects(ids: list[int]) -> str:
    return f"object{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))}"


KEYS = {"commit": "c", "clear": "Shift-C", "undo": "u", "cycle": "m", "negative": "n", "edit": EDIT_KEY}
_REACT = ("added", "changed", "removed")


class AnnotatorWidget(AnnotatorEmbedding, QWidget):
    """Interactive Segment Anything annotation of an image layer (2D, or any plane of a stack).

    Signals
    -------
    preview_updated(object)
        After each preview repaint: the :class:`~napari_sam.prediction.result.Prediction` shown (None when
        the preview was cleared).
    embeddings_ready(object)
        When a plane's embeddings are ready: the plane index tuple.
    committed(list)
        The ids of the objects a commit added (for a commit that waited for the refined mask, when it
        arrived).
    """

    preview_updated = Signal(object)
    embeddings_ready = Signal(object)
    committed = Signal(list)

    def __init__(self, napari_viewer, parent=None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.session: AnnotatorSession | None = None
        self.image_layer = None
        self.points_layer = self.shapes_layer = self.preview_layer = self.objects_layer = None
        self.prediction = None  # what the preview shows, with self._shown_prompts
        self.refined = True  # whether it is a final answer (not the provisional quick one)
        self._shown_prompts = None
        self.candidate: int | None = None  # None: the single best mask; 0..2: multimask candidates
        self.negative_mode = False
        self._models: dict[tuple[str, str], object] = {}
        self._painter: PreviewPainter | None = None
        self._encode_worker = None
        self._encode_relay = None
        self._encode_plane = None
        self._session_key = None
        self._propagate_relay = None
        self._propagate_worker = None
        self._clearing = False
        self._new_object_note: tuple | None = None  # (prompts, text): said with the preview of those prompts
        self._disconnect: list = []
        self._build_ui()
        self.previews = PreviewRuns(self._show, self.set_status)
        self._plane_timer = QTimer(self)  # debounce: scrubbing through a stack encodes only where it stops
        self._plane_timer.setSingleShot(True)
        self._plane_timer.setInterval(250)
        self._plane_timer.timeout.connect(self._on_plane_settled)
        self.viewer.dims.events.current_step.connect(self._on_plane_changed)
        self.viewer.layers.events.removed.connect(self._on_layer_removed)
        self._bind_keys()
        self._fit_when_docked = ResetViewOnFirstShow(self, lambda: self.viewer)  # the dock narrows the canvas

    # -- UI ----------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.image_combo = ImageLayerCombo(self.viewer)
        self.model_combo = model_combo()
        self.device_combo = device_combo()
        self.cache_edit = QLineEdit()
        self.cache_edit.setPlaceholderText("none: embeddings are forgotten on exit")
        self.cache_edit.setToolTip(
            "A folder where embeddings are kept (one <image>-<model>.zarr per image), "
            "so reopening the image later skips the encoder"
        )
        cache_btn = QPushButton("…")
        cache_btn.setMaximumWidth(32)
        cache_btn.clicked.connect(self._choose_cache_dir)
        cache_row = QHBoxLayout()
        cache_row.addWidget(self.cache_edit)
        cache_row.addWidget(cache_btn)
        form = QFormLayout()
        form.addRow("Image", self.image_combo)
        form.addRow("Model", self.model_combo)
        form.addRow("Device", self.device_combo)
        form.addRow("Embedding cache", cache_row)

        self.compute_btn = QPushButton("Compute embeddings")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.negative_box = QCheckBox(f"Negative points [{KEYS['negative'].upper()}] (or Shift-click)")
        self.commit_btn = QPushButton(f"Commit [{KEYS['commit'].upper()}]")
        self.clear_btn = QPushButton(f"Clear prompts [{KEYS['clear']}]")
        self.undo_btn = QPushButton(f"Undo commit [{KEYS['undo'].upper()}]")
        self.cycle_btn = QPushButton(f"Next candidate [{KEYS['cycle'].upper()}]")
        self.propagate_btn = QPushButton("Propagate through stack")
        self.save_btn = QPushButton("Save annotations…")
        self.candidate_label = QLabel("Candidate: best")
        self.status = QLabel("Choose an image and compute its embeddings.")
        self.status.setWordWrap(True)
        help_text = QLabel(
            "Click: positive point · Shift-click: negative · Rectangle: box · Polygon/ellipse: mask prompt"
        )
        help_text.setWordWrap(True)

        grid = QGridLayout()
        grid.addWidget(self.compute_btn, 0, 0)
        grid.addWidget(self.cancel_btn, 0, 1)
        grid.addWidget(self.commit_btn, 1, 0)
        grid.addWidget(self.clear_btn, 1, 1)
        grid.addWidget(self.undo_btn, 2, 0)
        grid.addWidget(self.cycle_btn, 2, 1)
        grid.addWidget(self.propagate_btn, 3, 0)
        grid.addWidget(self.save_btn, 3, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(grid)
        self.refine = RefineControls(self)  # a Labels layer's objects as the committed ones, E edits one
        layout.addWidget(self.refine)
        self.like = LikeCommittedPanel(self)  # "Find more like these": the committed objects as examples
        layout.addWidget(self.like)
        self.background = BackgroundEmbeddingPanel()  # a large image's tiles, embedded while prompting
        for w in (self.background, self.negative_box, self.candidate_label, help_text, self.status):
            layout.addWidget(w)
        layout.addStretch(1)

        self.compute_btn.clicked.connect(self.compute_embeddings)
        self.cancel_btn.clicked.connect(self.cancel)
        self.commit_btn.clicked.connect(self.commit)
        self.clear_btn.clicked.connect(self.clear_prompts)
        self.undo_btn.clicked.connect(self.undo)
        self.cycle_btn.clicked.connect(self.cycle_candidate)
        self.negative_box.toggled.connect(self._set_negative)
        self.save_btn.clicked.connect(self._save_dialog)
        self.propagate_btn.clicked.connect(self.propagate)
        self.propagate_btn.setEnabled(False)
        self.propagate_btn.setToolTip(
            "Follow the previewed object through the planes of a stack and commit it"
        )

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    def _bind_keys(self) -> None:
        actions = {
            "commit": self.commit,
            "clear": self.clear_prompts,
            "undo": self.undo,
            "cycle": self.cycle_candidate,
            "negative": lambda: self.negative_box.toggle(),
            "edit": self.refine.edit_at_cursor,
        }
        for name, key in KEYS.items():
            self.viewer.bind_key(key, lambda _viewer, f=actions[name]: f(), overwrite=True)

    def unbind_keys(self) -> None:
        for key in KEYS.values():
            self.viewer.bind_key(key, None, overwrite=True)

    # -- prompts → preview -------------------------------------------------------------------------
    def _on_prompts_changed(self, event) -> None:
        action = str(getattr(event, "action", "changed"))
        if action in _REACT and not self._clearing:
            if action == "added" and self._click_starts_new_object():  # (the core tells a click from a box)
                return
            self.request_preview()

    def _click_starts_new_object(self) -> bool:
        """A positive click far outside the previewed object's mask (see
        :func:`napari_sam.prediction.clicks.starts_new_object`): commit the preview, then prompt a new object
        with that click alone. Returns whether it did.
        """
        if self.prediction is None or self.session is None:
            return False
        try:
            prompts = collect_prompts(
                self.points_layer,
                self.shapes_layer,
                self.image_layer,
                self.session.info,
                self._current_plane(),
            )
        except ValueError:
            return False
        if not starts_new_object(self._shown_prompts, self.prediction, prompts, self.candidate):
            return False
        point = np.array(self.points_layer.data[-1])
        ids = self.commit()  # the preview (or its refined mask when it arrives); clears the prompts
        why = ""
        if self.prediction is not None:  # the commit failed (e.g. all its pixels are taken): start afresh
            why = self.status.text()
            self.clear_prompts()
        self._new_object_note = (new_object_prompts(prompts), new_object_text(ids, KEYS["undo"].upper(), why))
        self.points_layer.add(point)  # the new object's first click: previews it
        return True

    def request_preview(self) -> None:
        """Predict from the current prompts and show the preview: on the main thread when that is only a
        decoder pass, else in a worker (see :mod:`napari_sam._napari._preview`).
        """
        if self.session is None:
            return
        plane = self._current_plane()
        if not self.session.is_ready(plane):
            return
        try:
            prompts = self.refine.apply(  # on the object being edited, if any
                collect_prompts(
                    self.points_layer, self.shapes_layer, self.image_layer, self.session.info, plane
                )
            )
        except ValueError as err:  # e.g. a point off the image: said, not raised into napari's events
            prompts, problem = None, str(err)
        else:
            problem = ""
        if prompts is None or prompts.is_empty:
            self.previews.forget()
            self._show(None, None, "")
            if problem:
                self.set_status(problem)
            return
        self.previews.run(self.session, prompts, self.candidate is not None)

    @property
    def last_timing(self) -> dict:
        """How the shown preview was made (see :class:`~napari_sam._napari._preview.PreviewRuns`)."""
        return self.previews.last_timing

    def _show(self, prediction, prompts, note: str, final: bool = True) -> None:
        self.prediction, self._shown_prompts = prediction, prompts
        self.refined = final
        if prediction is None:
            self._painter.clear()
        else:
            cand = None if self.candidate is None else min(self.candidate, prediction.num_candidates - 1)
            self._painter.paint(prediction, prompts.plane, cand, provisional=not final)
            self._label_candidate(prediction, cand)
            k = prediction.scores.shape[0]
            what = f"{k} object{'s' if k > 1 else ''}"
            editing = self.refine.editing
            if final and editing is not None:
                k_id = editing.refines
                text = (
                    f"Editing object {k_id} (yellow outline): {KEYS['commit'].upper()} commits it under id "
                    f"{k_id}, {KEYS['clear']} stops editing"
                )
            elif final:
                text = f"{what} in the preview (yellow outline): {KEYS['commit'].upper()} to commit"
                text = self._click_notes(text, prediction, prompts, cand)
            else:
                text = (
                    f"Rough preview of {what} (thin outline), {note} {KEYS['commit'].upper()} commits the "
                    f"refined mask when it is ready"
                )
                note = ""
            self.set_status(text + (f" ({note})" if note else ""))
        self.preview_updated.emit(prediction)

    def _label_candidate(self, prediction, cand: int | None) -> None:
        """The candidate line: which mask is shown and its score (one object), e.g. "Candidate 2/3 ·
        est. IoU 0.81" (see :func:`napari_sam.prediction.quality.candidate_scores`).
        """
        which = "Candidate: best" if cand is None else f"Candidate {cand + 1}/{prediction.num_candidates}"
        if prediction.scores.shape[0] == 1:
            scores = candidate_scores(prediction, self.session.model)
            which += f" · {scores[prediction.best_index(0) if cand is None else cand].label}"
            self.candidate_label.setToolTip(score_meaning(self.session.model))
        self.candidate_label.setText(which)

    def _click_notes(self, text: str, prediction, prompts, cand: int | None) -> str:
        """The status of a final preview with what the click did: started a new object (said once, with
        the preview of that click), gave a mask much larger than the objects committed so far.
        """
        note, self._new_object_note = self._new_object_note, None
        if note is not None and note[0] == prompts:
            text = f"{note[1]}. {text}"
        if prediction.scores.shape[0] == 1:
            area = int(prediction.crops[0][prediction.best_index(0) if cand is None else cand].sum())
            areas = [o.area for o in self.session.annotations.objects]
            large = large_mask_note(prompts, area, areas)
            if large:
                text = f"{text}. Note: {large}"
        return text

    # -- actions -----------------------------------------------------------------------------------
    def _set_negative(self, on: bool) -> None:
        self.negative_mode = bool(on)

    def cycle_candidate(self) -> None:
        """Show the next of the three candidate masks (then back to the single best mask)."""
        self.candidate = {None: 0, 0: 1, 1: 2, 2: None}[self.candidate]
        self.candidate_label.setText(
            "Candidate: best" if self.candidate is None else f"Candidate {self.candidate + 1}/3"
        )
        self.request_preview()

    def commit(self) -> list[int]:
        """Commit the previewed object(s) under new ids, then clear the prompts.

        While the preview is the rough (quick) answer and the refined one is being computed, the refined
        mask is committed when it arrives (the prompts are cleared at once, so the next object can be
        prompted meanwhile); the status says so. Returns the new ids (empty when the commit waits).
        """
        if self.session is None:
            report_error(
                "commit", ValueError("compute embeddings first, then prompt an object"), self.set_status
            )
            return []
        session, cand = self.session, self.candidate

        def commit_final(prediction, prompts) -> None:
            try:
                ids = session.commit(prediction, prompts, cand)
            except ValueError as err:
                report_error("commit", err, self.set_status)
                return
            self.set_status(f"Committed the refined {_objects(ids)}.")
            self.committed.emit(ids)

        def failed(why: str) -> None:
            self.set_status(f"Nothing committed: {why}. Prompt the object again.")

        run = self.previews.current
        if run is not None and run.final is not None and run.final is not self.prediction:
            self.prediction, self.refined = run.final, True  # computed, not painted yet: that one
        elif self.previews.commit_when_final(commit_final, failed):
            self.clear_prompts()
            self.set_status("Committing the refined mask as soon as it is ready …")
            return []
        if self.prediction is None:
            report_error("commit", ValueError("nothing to commit: prompt an object first"), self.set_status)
            return []
        try:
            ids = session.commit(self.prediction, self._shown_prompts, cand)
        except ValueError as err:
            report_error("commit", err, self.set_status)
            return []
        rough = not self.refined
        self.clear_prompts()
        self.set_status(
            f"Committed the rough (unrefined) {_objects(ids)}." if rough else f"Committed {_objects(ids)}."
        )
        self.committed.emit(ids)
        return ids

    def clear_prompts(self) -> None:
        """Remove every prompt (points and shapes) and the preview."""
        if self.session is None:
            return
        self.refine.stop()
        self.candidate = None
        self.candidate_label.setText("Candidate: best")
        self._clearing = True  # no prediction for the half-cleared prompts in between
        try:
            if len(self.points_layer.data):
                self.points_layer.data = np.zeros((0, self.points_layer.ndim))
            if len(self.shapes_layer.data):
                self.shapes_layer.selected_data = set(range(len(self.shapes_layer.data)))
                self.shapes_layer.remove_selected()
        finally:
            self._clearing = False
        self.previews.forget()
        self._show(None, None, "")
        self.set_status("Prompts cleared, nothing in the preview: click on an object or draw a box.")

    def undo(self) -> int | None:
        """Remove the last committed object."""
        if self.session is None:
            return None
        removed = self.session.undo()
        self.set_status("Nothing to undo." if removed is None else f"Removed object {removed}.")
        return removed

    def _on_objects_changed(self, *_) -> None:
        if self.objects_layer is not None:
            self.objects_layer.refresh()

    def _on_annotations_replaced(self) -> None:
        if self.objects_layer is not None and self.session is not None:
            self.objects_layer.data = self.session.labels_view

    def propagate(self) -> None:
        """Follow the previewed object through the stack (a worker), then commit it under one new id on
        every plane where it was found (one undo removes it).
        """
        if self.session is None or self.prediction is None:
            report_error(
                "propagation", ValueError("nothing to propagate: preview an object first"), self.set_status
            )
            return
        if not self.session.info.lead_shape:
            report_error("propagation", ValueError("this image has a single plane"), self.set_status)
            return
        session, prediction, prompts = self.session, self.prediction, self._shown_prompts
        callback, relay = make_progress_relay("napari-sam: propagating")
        self._propagate_relay = relay
        self.cancel_btn.setEnabled(True)
        self.set_status("Propagating through the stack …")

        def done(masks):
            try:
                new_id = session.commit_planes(masks, prompts)
            except ValueError as err:
                report_error("propagation", err, self.set_status)
                return
            self.clear_prompts()
            planes = session.annotations.objects[-1].planes
            self.set_status(f"Object {new_id} committed on {len(planes)} planes ({planes[0]}–{planes[-1]}).")

        def finished():
            relay.close()
            self._propagate_relay = None
            self.cancel_btn.setEnabled(self._encode_worker is not None)

        self._propagate_worker = start_worker(
            session.propagate,
            prediction,
            prompts.plane,
            callback,
            lambda: relay.cancelled,
            what="propagation",
            on_return=done,
            on_finish=finished,
            status=self.set_status,
        )

    def save_annotations(self, path) -> None:
        """Write the committed objects (labels.tif + objects.json) into folder ``path``."""
        if self.session is None:
            raise ValueError("nothing to save: compute embeddings and commit objects first")
        self.session.annotations.save(path)
        self.set_status(f"Saved {len(self.session.annotations.objects)} objects to {path}")

    def _save_dialog(self) -> None:
        path = QFileDialog.getSaveFileName(self, "Save napari-sam annotations (a folder)")[0]
        if path:
            try:
                self.save_annotations(path)
            except (ValueError, OSError) as err:
                report_error("saving annotations", err, self.set_status)

    @property
    def busy(self) -> bool:
        """Whether a worker (embeddings, preview, propagation, finding more like these) is running."""
        workers = (self._encode_worker, self.previews.worker, self._propagate_relay, self.like.worker)
        return any(w is not None for w in workers)

    def _on_layer_removed(self, event) -> None:
        if self.session is not None and same_layer(event.value, self.image_layer):
            self.shutdown()
            self.set_status("The image layer was removed; choose an image and compute its embeddings.")

    def shutdown(self) -> None:
        """Cancel running jobs and forget the session (the layers stay in the viewer)."""
        self.background.stop(wait=True)
        self.cancel()
        self.like.stop()
        self.previews.shutdown()
        self._plane_timer.stop()
        for disconnect in self._disconnect:
            disconnect()
        self._disconnect = []
        self.session = self.image_layer = self._painter = self.prediction = None

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt)
        self.shutdown()
        self.like.shutdown()
        self.unbind_keys()
        for ev, slot in (
            (self.viewer.dims.events.current_step, self._on_plane_changed),
            (self.viewer.layers.events.removed, self._on_layer_removed),
        ):
            ev.disconnect(slot)
        super().closeEvent(event)
