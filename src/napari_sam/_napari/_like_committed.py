"""The annotator's "Find more like these" panel: the committed objects are the examples, the core
(:func:`napari_sam.automatic.segment_like_committed`) finds the new objects like them on the plane in
view or the whole stack, in a worker; they go to a review Labels layer "<image> SAM like committed"
(the user drops the wrong ones there), and "Add them" commits what is left
(:meth:`napari_sam.segmenter.Segmenter.commit_labels`, one undo step per object).
"""

from __future__ import annotations

import time

import numpy as np
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from napari_sam._napari._everything import empty_reason
from napari_sam._napari._layers import check_labels_data, same_layer, transform_kwargs
from napari_sam._napari._progress_panel import ProgressPanel
from napari_sam._napari._workers import make_progress_relay, report_error, start_worker

REVIEW_SUFFIX = " SAM like committed"
SCOPES = ("this plane", "all planes")


def _count(n: int) -> str:
    return f"{n} object{'s' if n != 1 else ''}"


class LikeCommittedPanel(QWidget):
    """The "Find more like these" button (with a scope for stacks), "Add them", progress and Cancel.

    Attributes
    ----------
    review_layer
        The Labels layer holding the objects found and not added yet (None when there is none).
    worker
        The running search's worker, or None.
    """

    def __init__(self, annotator, parent=None) -> None:
        super().__init__(parent)
        self.annotator = annotator
        self.review_layer = None
        self.worker = None
        self._relay = None
        self.find_btn = QPushButton("Find more like these")
        self.find_btn.setToolTip(
            "Segment the rest of the image like the committed objects (their size, size range, polarity and "
            "look): the new objects go to a review layer, never over the committed ones"
        )
        self.scope_combo = QComboBox()
        self.scope_combo.addItems(list(SCOPES))
        self.scope_combo.setToolTip(
            "A stack: search the plane in view, or every plane (objects found on neighbouring planes are "
            "linked under one id)"
        )
        self.add_btn = QPushButton("Add them")
        self.add_btn.setToolTip(
            "Commit the objects left in the review layer (erase or fill with 0 the ones you do not want "
            "first); each one is an undo step"
        )
        self.add_btn.setEnabled(False)
        self.progress = ProgressPanel()
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.find_btn, 1)
        row.addWidget(self.scope_combo)
        row.addWidget(self.add_btn)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        self.find_btn.clicked.connect(self.find)
        self.add_btn.clicked.connect(self.add)
        self.progress.cancel_requested.connect(self.stop)
        annotator.viewer.layers.events.removed.connect(self._on_layer_removed)
        self.set_stack(False)

    def set_stack(self, is_stack: bool) -> None:
        """Offer the scope choice only for a stack."""
        self.scope_combo.setVisible(is_stack)
        if not is_stack:
            self.scope_combo.setCurrentIndex(0)

    # -- finding -----------------------------------------------------------------------------------
    def find(self):
        """Search for new objects like the committed ones in a worker; returns it (None if refused, the
        reason in the status line).
        """
        a = self.annotator
        try:
            if a.session is None or a.session.annotations is None:
                raise ValueError("compute the image's embeddings and commit a few typical objects first")
            if self.worker is not None:
                raise ValueError("already searching: wait for it or press Cancel")
            if a._encode_worker is not None or a._propagate_relay is not None:
                raise ValueError("the annotator is busy (embedding or propagating): try again after")
        except ValueError as err:
            report_error("find more like these", err, a.set_status)
            return None
        # (no committed objects: the core says so, from the worker, in the status line)
        session, layer, info = a.session, a.image_layer, a.session.info
        plane = a._current_plane()
        every = bool(info.lead_shape) and self.scope_combo.currentText() == "all planes"
        seg = session.segmenter
        planes = "all" if every else (seg.plane_index(plane) if info.lead_shape else None)
        callback, relay = make_progress_relay("napari-sam: find more like these")
        self._relay = relay
        relay.step.connect(self.progress.update)
        where = "every plane" if every else (f"plane {plane}" if plane else "the image")
        busy = f"Finding more objects like the committed ones on {where} …"
        self.progress.start("windows", busy)
        self.find_btn.setEnabled(False)
        a.set_status(busy)
        started = time.perf_counter()

        def job():
            from napari_sam.automatic import segment_like_committed

            return segment_like_committed(
                seg, planes=planes, progress=callback, should_stop=lambda: relay.cancelled, return_info=True
            )

        def done(result):
            found, run_info = result
            if a.session is session:
                self._show(
                    layer, info, plane, every, np.asarray(found), run_info, time.perf_counter() - started
                )

        def finished():
            relay.close()
            self.worker = self._relay = None
            self.find_btn.setEnabled(True)
            self.progress.finish("")

        self.worker = start_worker(
            job, what="find more like these", on_return=done, on_finish=finished, status=a.set_status
        )
        return self.worker

    def _show(self, layer, info, plane, every: bool, found: np.ndarray, run_info: dict, seconds: float):
        """Put the objects found into the review layer (a new one, or the one there, replaced)."""
        a = self.annotator
        full = np.zeros((*info.lead_shape, *info.spatial_shape), dtype=np.int32)
        if every:
            full[...] = found.reshape(full.shape)
        else:
            full[tuple(plane)] = found
        n = len(np.unique(found[found > 0]))
        if n == 0:
            self._drop_review()
            reasons = {empty_reason(p.get("empty")) for p in run_info.get("planes", []) if p.get("empty")}
            why = f": {'; '.join(sorted(reasons))}" if reasons else ""
            a.set_status(f"No new objects like the committed ones found{why} ({seconds:.1f} s).")
            return
        name = f"{layer.name}{REVIEW_SUFFIX}"
        viewer = a.viewer
        if self.review_layer is not None and self.review_layer.data.shape == full.shape:
            self.review_layer.data = full
        else:
            self._drop_review()
            self.review_layer = viewer.add_labels(full, name=name, opacity=0.9, **transform_kwargs(layer))
        review = self.review_layer
        review.visible = True
        review.contour = 2  # outlines: told apart from the committed objects (filled) at a glance
        viewer.layers.selection.active = review
        review.selected_label = 0  # the fill bucket with 0: one click drops an object
        review.mode = "fill"
        self.add_btn.setEnabled(True)
        committed = len(a.session.annotations.objects)
        a.set_status(
            f"Found {_count(n)} like the {committed} committed in {seconds:.1f} s, in layer {review.name!r}: "
            "click the ones you do not want (fill with 0) to drop them, then press 'Add them'."
        )

    def stop(self) -> None:
        """Cancel the running search at its next window."""
        if self._relay is not None:
            self._relay.cancel()

    # -- adding ------------------------------------------------------------------------------------
    def add(self) -> list[int]:
        """Commit the objects left in the review layer, remove the layer; the new ids."""
        a = self.annotator
        review = self.review_layer
        try:
            if review is None or review not in a.viewer.layers:
                raise ValueError("nothing to add: press 'Find more like these' first")
            if a.session is None or a.session.annotations is None:
                raise ValueError("the annotator has no image: compute its embeddings first")
            check_labels_data(review)
            data = np.asarray(review.data)
            info = a.session.info
            if info.lead_shape:
                data = data.reshape(a.session.segmenter.num_planes, *info.spatial_shape)
            ids = a.session.segmenter.commit_labels(data)
        except ValueError as err:
            report_error("add them", err, a.set_status)
            return []
        self._drop_review()
        if a.points_layer is not None and a.points_layer in a.viewer.layers:
            a.viewer.layers.selection.active = a.points_layer
            a.points_layer.mode = "add"
        if not ids:
            a.set_status("Nothing added: the review layer held no new objects.")
        else:
            which = f"id {ids[0]}" if len(ids) == 1 else f"ids {ids[0]}–{ids[-1]}"
            a.set_status(f"Added {_count(len(ids))} ({which}); U undoes them one at a time.")
        a.committed.emit(ids)
        return ids

    # -- the review layer --------------------------------------------------------------------------
    def _drop_review(self) -> None:
        review, self.review_layer = self.review_layer, None
        self.add_btn.setEnabled(False)
        if review is not None and review in self.annotator.viewer.layers:
            self.annotator.viewer.layers.remove(review)

    def _on_layer_removed(self, event) -> None:
        if same_layer(event.value, self.review_layer):
            self.review_layer = None
            self.add_btn.setEnabled(False)

    def shutdown(self) -> None:
        """Cancel a running search (the review layer stays in the viewer)."""
        self.stop()
        try:
            self.annotator.viewer.layers.events.removed.disconnect(self._on_layer_removed)
        except (RuntimeError, TypeError, ValueError):
            pass
