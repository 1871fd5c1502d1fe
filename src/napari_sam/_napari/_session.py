"""The annotator's session: one image layer's planes, their :class:`Segmenter` s and the committed
objects. No Qt here: the widget calls these methods from its workers and its main thread.

Thread rules (the widget keeps them): ``encode_plane`` runs in a worker and only publishes a finished
Segmenter; ``predict`` runs in one worker at a time; ``commit``/``undo`` run on the main thread.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from ..annotations import Annotations
from ..mask_prompt import mask_prompt
from ..prediction import Prediction
from ._layers import ImageInfo
from ._prompts import PromptSet


class AnnotatorSession:
    """Segmenters for the planes of one image, sharing one model and one :class:`Annotations`.

    Parameters
    ----------
    model
        A loaded :class:`~napari_sam.models.loading.SamModel`.
    info
        The image layer's :class:`ImageInfo`.
    get_plane
        ``get_plane(plane) -> array``: the (H, W) or (H, W, 3|4) pixels of a plane (``()`` in 2D).
    max_planes
        How many planes keep their embeddings (least recently used dropped first).
    """

    def __init__(self, model, info: ImageInfo, get_plane: Callable[[tuple[int, ...]], object],
                 max_planes: int = 8) -> None:
        self.model = model
        self.info = info
        self.get_plane = get_plane
        self.max_planes = max_planes
        self._segmenters: OrderedDict[tuple[int, ...], object] = OrderedDict()
        self._scaling = None
        shape = (info.num_planes, *info.spatial_shape) if info.lead_shape else info.spatial_shape
        self.annotations = Annotations(shape)

    # -- embeddings --------------------------------------------------------------------------------
    def is_ready(self, plane: tuple[int, ...]) -> bool:
        return tuple(plane) in self._segmenters

    def segmenter(self, plane: tuple[int, ...]):
        """The ready Segmenter of ``plane``; ``ValueError`` if its embeddings are not computed."""
        plane = tuple(plane)
        if plane not in self._segmenters:
            where = f" of plane {plane}" if plane else ""
            raise ValueError(f"no embeddings{where} yet: press 'Compute embeddings' first")
        self._segmenters.move_to_end(plane)
        return self._segmenters[plane]

    def encode_plane(self, plane: tuple[int, ...], progress: Callable[[int, int], None] | None = None):
        """Encode one plane (slow: seconds on a CPU); returns its Segmenter, published when done.

        All planes of a stack share the intensity scaling of the first plane encoded, so one object
        looks the same to the model on every plane.
        """
        from ..segmenter import Segmenter

        plane = tuple(plane)
        seg = Segmenter(self.model)
        seg.set_image(self.get_plane(plane), scaling=self._scaling, progress=progress)
        if self._scaling is None:
            self._scaling = seg.image.scaling
        self._segmenters[plane] = seg
        self._segmenters.move_to_end(plane)
        while len(self._segmenters) > self.max_planes:
            self._segmenters.popitem(last=False)
        return seg

    # -- prompts → prediction ----------------------------------------------------------------------
    def prompt_kwargs(self, prompts: PromptSet) -> tuple[dict, str]:
        """``Segmenter.predict`` keyword arguments for ``prompts`` and a note on what was used.

        Rules: a drawn polygon/ellipse gives the box and mask prompt (rectangles are then ignored);
        otherwise rectangles are boxes — all of them as separate objects when there are no points,
        only the latest one when there are points; points are passed as they are.
        """
        note = ""
        kwargs: dict = {}
        if len(prompts.points):
            kwargs["points"] = prompts.points
            kwargs["labels"] = prompts.labels
        if prompts.mask is not None:
            kwargs.update(mask_prompt(self.segmenter(prompts.plane), prompts.mask))
            if len(prompts.boxes):
                note = "a polygon/ellipse is drawn: rectangles are ignored"
        elif len(prompts.boxes):
            if len(prompts.points) and len(prompts.boxes) > 1:
                kwargs["box"] = prompts.boxes[-1]
                note = f"points go with one box: using the latest of {len(prompts.boxes)} rectangles"
            else:
                kwargs["box"] = prompts.boxes if len(prompts.boxes) > 1 else prompts.boxes[0]
        return kwargs, note

    def predict(self, prompts: PromptSet, multimask: bool = False) -> tuple[Prediction, str]:
        """Predict the object(s) for ``prompts`` on their plane; returns the prediction and a note."""
        if prompts.empty:
            raise ValueError("no prompts: click on an object or draw a box")
        if len(prompts.points) and not (prompts.labels == 1).any() and not len(prompts.boxes) \
                and prompts.mask is None:
            raise ValueError("only negative points: add a positive point or a box on the object")
        seg = self.segmenter(prompts.plane)
        kwargs, note = self.prompt_kwargs(prompts)
        return seg.predict(multimask=multimask, **kwargs), note

    # -- committed objects -------------------------------------------------------------------------
    def commit(self, prediction: Prediction, plane: tuple[int, ...], candidate: int | None = None,
               prompts: PromptSet | None = None) -> list[int]:
        """Commit every object of ``prediction`` (candidate ``candidate`` or the best) under new ids.

        Objects whose mask is empty or entirely covered by earlier objects are skipped; ``ValueError``
        if none is left.
        """
        ids: list[int] = []
        flat = self.info.flat_plane(tuple(plane))
        record = prompts.as_dict() if prompts is not None else {}
        skipped = []
        for k in range(prediction.scores.shape[0]):
            m = prediction.best_index(k) if candidate is None else candidate
            try:
                ids.append(self.annotations.commit(prediction.mask(k, m), plane=flat,
                                                   score=float(prediction.scores[k, m]), prompts=record))
            except ValueError as err:
                skipped.append(str(err))
        if not ids:
            raise ValueError(f"nothing committed: {skipped[0] if skipped else 'no object'}")
        return ids

    def undo(self) -> int | None:
        """Remove the last committed object; its id or None."""
        return self.annotations.undo()

    @property
    def labels_view(self) -> np.ndarray:
        """The committed labels shaped like the image layer's non-channel axes (a view, not a copy)."""
        return self.annotations.labels.reshape(*self.info.lead_shape, *self.info.spatial_shape)
