"""The committed objects of a :class:`~napari_sam.segmenter.Segmenter`: commit, correct, undo, read.

:class:`CommittedObjects` is one part of the segmenter (it inherits these methods); it works on the
segmenter's :class:`~napari_sam.annotations.Annotations` and tells its front ends through its events.
Coordinates are napari's: pixels (row, col); planes of a stack as an index or the leading indices.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from napari_sam.annotations import Annotations
from napari_sam.prediction.result import Prediction
from napari_sam.prompts import Prompts


class CommittedObjects:
    """Commit, correct, undo and read the committed objects.

    Relies on what :class:`~napari_sam.segmenter.Segmenter` holds: ``_annotations`` (the
    :class:`~napari_sam.annotations.Annotations`, None before an image), ``events``
    (:class:`~napari_sam.segmenter.SegmenterEvents`), ``_plane`` and ``lead_shape`` (the plane in view
    and the stack's leading shape), ``last_prediction``, ``image_shape``, ``plane_index()`` and
    ``_require_image()``.
    """

    @property
    def annotations(self) -> Annotations | None:
        """The committed objects (:class:`~napari_sam.annotations.Annotations`); None before an image.

        Setting it (objects loaded from a file, or kept from an earlier session on the same image)
        emits ``events.annotations_replaced``; its shape must match the labels'.
        """
        return self._annotations

    @annotations.setter
    def annotations(self, annotations: Annotations) -> None:
        if self._annotations is not None and annotations.labels.shape != self._annotations.labels.shape:
            raise ValueError(
                f"these annotations are for an image of shape {annotations.labels.shape}, "
                f"not this one's {self._annotations.labels.shape}"
            )
        self._annotations = annotations
        self.events.annotations_replaced.emit()

    def load_labels(self, labels: np.ndarray) -> Annotations:
        """Make an existing segmentation the committed objects (one per label value, ids kept; see
        :meth:`~napari_sam.annotations.Annotations.from_labels`), to correct them
        (:meth:`refine_prompts`) or add to them. ``labels`` has the shape of the labels: (H, W), or
        (P, H, W) for a stack (planes flattened like the image's). Returns the new annotations.
        """
        self._require_image()
        want = self._annotations.labels.shape
        arr = np.asarray(labels)
        if arr.ndim > len(want) and arr.shape[-2:] == want[-2:] and arr.size == int(np.prod(want)):
            arr = arr.reshape(want)  # (T, Z, H, W): the planes flattened like the image's
        if arr.shape != want:
            raise ValueError(f"these labels have shape {np.shape(labels)}; the image's labels are {want}")
        self.annotations = Annotations.from_labels(arr)
        return self._annotations

    def refine_prompts(self, obj_id: int, plane: int | tuple[int, ...] | None = None) -> Prompts:
        """The prompts that start a correction of committed object ``obj_id`` on ``plane`` (default: the
        plane in view): its mask as the mask prompt, ``refines=obj_id``. Add points or a box
        (:meth:`Prompts.with_point`, :meth:`Prompts.with_box`) and predict; committing the answer
        replaces the object's pixels under the same id (one :meth:`undo` restores them).
        """
        self._require_image()
        if isinstance(obj_id, bool) or not isinstance(obj_id, int | np.integer):
            raise ValueError(f"an object id is an integer; got {obj_id!r}")
        obj_id = int(obj_id)
        if not any(o.id == obj_id for o in self._annotations.objects):
            raise ValueError(f"there is no committed object {obj_id}")
        index = self._plane if plane is None else self.plane_index(plane)
        labels = self._annotations.labels
        mask = (labels[index] if labels.ndim == 3 else labels) == obj_id
        if not mask.any():
            raise ValueError(f"object {obj_id} has no pixels on plane {index}")
        lead = ()
        if self.lead_shape:
            lead = tuple(int(v) for v in np.unravel_index(index, self.lead_shape))
        return Prompts(mask=mask, plane=lead, refines=obj_id)

    def object_at(self, row: float, col: float, plane: int | tuple[int, ...] | None = None) -> int:
        """The id of the committed object at pixel (row, col) of ``plane`` (default: in view); 0 for none."""
        self._require_image()
        h, w = self.image_shape
        r, c = int(round(row)), int(round(col))
        if not (0 <= r < h and 0 <= c < w):
            return 0
        labels = self._annotations.labels
        index = self._plane if plane is None else self.plane_index(plane)
        return int((labels[index] if labels.ndim == 3 else labels)[r, c])

    @property
    def labels(self) -> np.ndarray:
        """(H, W) int32 label image of the committed objects (0 = background); (P, H, W) for a stack."""
        self._require_image()
        return self._annotations.labels

    def commit(
        self,
        prediction: Prediction | np.ndarray | None = None,
        *,
        k: int = 0,
        candidate: int | None = None,
        prompts: Prompts | dict | None = None,
        plane: int | tuple[int, ...] | None = None,
    ) -> int:
        """Commit a mask as a new object and return its id.

        ``prediction`` is a :class:`Prediction` (object ``k``, candidate ``candidate`` or the best one),
        an (H, W) bool mask, or None for the last prediction. For a stack the mask goes on ``plane``
        (default: the prediction's plane, else the plane in view). ``prompts`` are recorded with it;
        prompts that refine a committed object (:meth:`refine_prompts`) replace its pixels instead, under
        its id.
        """
        new_id = self._commit_one(prediction, k, candidate, self._record(prompts), plane)
        self.events.committed.emit([new_id])
        return new_id

    def commit_objects(
        self,
        prediction: Prediction,
        *,
        candidate: int | None = None,
        prompts: Prompts | dict | None = None,
        plane: int | tuple[int, ...] | None = None,
    ) -> list[int]:
        """Commit every object of ``prediction`` (K boxes at once) under new ids; returns them. Each
        object records its own prompts (:meth:`~napari_sam.prompts.Prompts.per_object`).

        Objects whose mask is empty or entirely covered by earlier objects are skipped; ``ValueError``
        when none is left.
        """
        k_objects = prediction.scores.shape[0]
        each = prompts.per_object() if isinstance(prompts, Prompts) else []
        records = (
            [self._record(p) for p in each] if len(each) == k_objects else [self._record(prompts)] * k_objects
        )
        ids, skipped = [], []
        for k in range(k_objects):
            try:
                ids.append(self._commit_one(prediction, k, candidate, records[k], plane))
            except ValueError as err:
                skipped.append(str(err))
        if not ids:
            raise ValueError(f"nothing committed: {skipped[0] if skipped else 'no object'}")
        self.events.committed.emit(ids)
        return ids

    def commit_labels(self, labels: np.ndarray, *, plane: int | tuple[int, ...] | None = None) -> list[int]:
        """Commit every object of a label image (e.g. :func:`~napari_sam.automatic.segment_like_committed`'s
        result, after review) as a new object; returns the new ids.

        ``labels`` is (H, W) int (on ``plane`` of a stack, default the plane in view) or, for a stack,
        (P, H, W) (an id on several planes becomes one object across them). Pixels already committed keep
        their object; objects left empty are skipped. Each object is one :meth:`undo` step and has no
        prompts in its record (like objects loaded with :meth:`load_labels`).
        """
        src = self._require_image()
        labels = np.asarray(labels)
        if labels.dtype.kind not in "iu":
            raise ValueError(f"labels must hold integer ids (0 = background); got dtype {labels.dtype}")
        full = tuple(self._annotations.labels.shape)
        whole_stack = src.is_stack and labels.shape == full
        if not whole_stack and labels.shape != full[-2:]:
            raise ValueError(
                f"labels of shape {labels.shape} do not fit this image: give (H, W) = {full[-2:]}"
                + (f" for one plane or (P, H, W) = {full} for the stack" if src.is_stack else "")
            )
        z = None if not src.is_stack else (self._plane if plane is None else self.plane_index(plane))
        ids: list[int] = []
        for value, sl in enumerate(ndi.find_objects(labels), start=1):
            if sl is None:
                continue
            try:
                if whole_stack:
                    planes = range(sl[0].start, sl[0].stop)
                    new = self._annotations.commit_planes({p: labels[p] == value for p in planes})
                else:
                    mask = np.zeros(labels.shape, dtype=bool)
                    mask[sl] = labels[sl] == value
                    new = self._annotations.commit(mask, plane=z)
            except ValueError:  # already covered by committed objects
                continue
            ids.append(new)
        if ids:
            self.events.committed.emit(ids)
        return ids

    @staticmethod
    def _record(prompts: Prompts | dict | None) -> dict:
        return prompts.to_record() if isinstance(prompts, Prompts) else dict(prompts or {})

    def _commit_one(self, prediction, k: int, candidate, record: dict, plane) -> int:
        src = self._require_image()
        prediction = self.last_prediction if prediction is None else prediction
        if prediction is None:
            raise ValueError("nothing to commit: predict() first or pass a mask")
        if isinstance(prediction, Prediction):
            m = (
                prediction.best_index(k)
                if candidate is None
                else min(candidate, prediction.num_candidates - 1)
            )
            mask, score = prediction.mask(k, m), float(prediction.scores[k, m])
        else:
            mask, score = np.asarray(prediction, dtype=bool), None
        if not src.is_stack:
            plane = None
        else:
            if plane is None:
                plane = getattr(prediction, "plane", None) if isinstance(prediction, Prediction) else None
            plane = self._plane if plane is None else self.plane_index(plane)
        refines = record.get("refines")
        if refines is not None:  # a correction: the object keeps its id
            return self._annotations.replace(refines, mask, plane=plane, score=score, prompts=record)
        return self._annotations.commit(mask, plane=plane, score=score, prompts=record)

    def commit_planes(
        self,
        masks: dict[int, np.ndarray],
        prompts: Prompts | dict | None = None,
        plane: int | tuple[int, ...] | None = None,
    ) -> int:
        """Commit a :meth:`propagate` result (plane → (H, W) bool mask) as one object: one id on every
        plane, removed by one :meth:`undo`. ``plane`` is where it was prompted; returns the id.
        """
        self._require_image()
        if plane is None and isinstance(prompts, Prompts) and prompts.plane:
            plane = prompts.plane
        plane = None if plane is None else self.plane_index(plane)
        new_id = self._annotations.commit_planes(masks, plane=plane, prompts=self._record(prompts))
        self.events.committed.emit([new_id])
        return new_id

    def undo(self) -> int | None:
        """Undo the last commit (remove the object it added, or give a refined object back its pixels);
        the object's id, or None when there is nothing to undo.
        """
        self._require_image()
        removed = self._annotations.undo()
        if removed is not None:
            self.events.undone.emit(removed)
        return removed
