"""The annotator's session: one image layer, one :class:`~napari_sam.segmenter.Segmenter` (a stack
for layers with leading axes) and its committed objects. No Qt here: the widget calls these methods
from its workers and its main thread.

Thread rules (the widget keeps them): ``load``/``encode_plane``/``propagate`` run in one worker at a
time; one ``predict`` at a time, on the main thread (``encode=False``: decoding only) or in a worker
(when it has to encode); ``commit``/``undo`` run on the main thread.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from napari_sam._napari._layers import ImageInfo
from napari_sam._napari._prompts import PromptSet
from napari_sam.prediction.mask_prompt import mask_prompt
from napari_sam.prediction.result import Prediction

Progress = Callable[[int, int], None] | None
Stop = Callable[[], bool] | None


class AnnotatorSession:
    """A Segmenter over the planes of one image layer, and the objects committed on them.

    Parameters
    ----------
    model
        A loaded :class:`~napari_sam.models.loading.SamModel`.
    info
        The image layer's :class:`ImageInfo`.
    data
        The layer's full-resolution array: ``lead_shape + (H, W)`` (``+ (C,)`` for RGB), numpy or
        dask. Several leading axes (e.g. T, Z) are flattened into one plane axis.
    annotations
        Objects committed earlier on the same image (kept when the model changes).
    cache
        A folder (``*.zarr``) to keep the embeddings in, reopened by a later session on the same image
        and model (see :meth:`~napari_sam.segmenter.Segmenter.set_image`); None for a temporary one.
    """

    def __init__(self, model, info: ImageInfo, data, annotations=None, cache=None) -> None:
        from napari_sam.segmenter import Segmenter

        self.model = model
        self.info = info
        self.segmenter = Segmenter(model)
        if len(info.lead_shape) > 1:
            data = data.reshape(info.num_planes, *data.shape[len(info.lead_shape) :])
        self._data = data
        self._ready: set[int] = set()
        self._loaded = False
        self._kept_annotations = annotations
        self.cache = cache

    # -- planes and embeddings ---------------------------------------------------------------------
    def flat(self, plane: tuple[int, ...]) -> int:
        """The Segmenter's plane index of a leading-axes index (0 for a 2D image)."""
        return self.info.flat_plane(tuple(plane)) or 0

    def is_ready(self, plane: tuple[int, ...]) -> bool:
        return self._loaded and self.flat(plane) in self._ready

    def encode_plane(
        self, plane: tuple[int, ...], progress: Progress = None, should_stop: Stop = None
    ) -> None:
        """Embed ``plane`` (seconds on a CPU; tiles for a large image): the first call validates the
        image, computes its global intensity scaling and opens the embedding store.
        """
        p = self.flat(plane)
        seg = self.segmenter
        if not self._loaded:
            seg.set_image(
                self._data,
                stack_axis=0 if self.info.lead_shape else None,
                plane=p,
                progress=progress,
                should_stop=should_stop,
                cache=self.cache,
            )
            if self._kept_annotations is not None and self._kept_annotations.labels.shape == seg.labels.shape:
                seg.annotations = self._kept_annotations
            self._loaded = True
        else:
            seg.set_plane(p, encode=True, progress=progress, should_stop=should_stop)
        self._ready.add(p)

    @property
    def cache_status(self) -> str | None:
        """What the persistent embedding cache did when opened ("new", "resumed", "complete",
        "rebuilt"); None without one.
        """
        store = self.segmenter.store
        return None if self.cache is None or store is None else store.status

    @property
    def annotations(self):
        """The committed objects (:class:`~napari_sam.annotations.Annotations`); None before loading."""
        return self.segmenter.annotations if self._loaded else self._kept_annotations

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
            kwargs.update(mask_prompt(self.segmenter, prompts.mask))
            if len(prompts.boxes):
                note = "a polygon/ellipse is drawn: rectangles are ignored"
        elif len(prompts.boxes):
            if len(prompts.points) and len(prompts.boxes) > 1:
                kwargs["box"] = prompts.boxes[-1]
                note = f"points go with one box: using the latest of {len(prompts.boxes)} rectangles"
            else:
                kwargs["box"] = prompts.boxes if len(prompts.boxes) > 1 else prompts.boxes[0]
        return kwargs, note

    def needs_box_search(self, prompts: PromptSet) -> bool:
        """Whether the model has to search the box under the clicks (box-trained models, points only):
        too slow for the main thread on a CPU.
        """
        return prompts.mask is None and self.segmenter.needs_box_search(prompts.points, prompts.boxes)

    def predict(
        self, prompts: PromptSet, multimask: bool = False, encode: bool = True, zoom: bool = True
    ) -> tuple[Prediction, str]:
        """Predict the object(s) for ``prompts`` on their plane; returns the prediction and a note.

        With ``encode=False`` only embeddings already computed are used: a prompt that needs a new one
        (the zoom window of a new object) raises :class:`~napari_sam.embeddings.embedder.EmbeddingNotReady`.
        ``zoom=False`` answers from the whole image (or its tile) instead of a zoom window: the quick,
        coarser first preview (see :meth:`~napari_sam.segmenter.Segmenter.predict`).
        """
        if prompts.empty:
            raise ValueError("no prompts: click on an object or draw a box")
        if not (prompts.labels == 1).any() and not len(prompts.boxes) and prompts.mask is None:
            raise ValueError("only negative points: add a positive point or a box on the object")
        if not self.is_ready(prompts.plane):
            where = f" of plane {prompts.plane}" if prompts.plane else ""
            raise ValueError(f"no embeddings{where} yet: press 'Compute embeddings' first")
        kwargs, note = self.prompt_kwargs(prompts)
        return self.segmenter.predict(
            multimask=multimask, plane=self.flat(prompts.plane), encode=encode, zoom=zoom, **kwargs
        ), note

    def propagate(
        self,
        prediction: Prediction,
        plane: tuple[int, ...],
        progress: Progress = None,
        should_stop: Stop = None,
    ) -> dict[int, np.ndarray]:
        """Follow object 0 of ``prediction`` from ``plane`` through the stack: flat plane → (H, W) mask."""
        if not self.info.lead_shape:
            raise ValueError("propagation needs a stack: this image has a single plane")
        return self.segmenter.propagate(
            prediction, plane=self.flat(plane), progress=progress, should_stop=should_stop
        )

    # -- committed objects -------------------------------------------------------------------------
    def commit(
        self,
        prediction: Prediction,
        plane: tuple[int, ...],
        candidate: int | None = None,
        prompts: PromptSet | None = None,
    ) -> list[int]:
        """Commit every object of ``prediction`` (candidate ``candidate`` or the best) under new ids.

        Objects whose mask is empty or entirely covered by earlier objects are skipped; ``ValueError``
        if none is left.
        """
        ids: list[int] = []
        record = prompts.as_dict() if prompts is not None else {}
        skipped = []
        for k in range(prediction.scores.shape[0]):
            try:
                ids.append(
                    self.segmenter.commit(
                        prediction, k=k, candidate=candidate, prompts=record, plane=self.flat(plane)
                    )
                )
            except ValueError as err:
                skipped.append(str(err))
        if not ids:
            raise ValueError(f"nothing committed: {skipped[0] if skipped else 'no object'}")
        return ids

    def commit_planes(self, masks: dict[int, np.ndarray], prompts: PromptSet | None = None) -> int:
        """Commit a propagation result as one object with one id on every plane; returns the id."""
        return self.segmenter.commit_planes(
            masks,
            prompts=prompts.as_dict() if prompts is not None else None,
            plane=self.flat(prompts.plane) if prompts is not None else None,
        )

    def undo(self) -> int | None:
        """Remove the last committed object; its id or None."""
        return self.segmenter.undo() if self._loaded else None

    @property
    def labels_view(self) -> np.ndarray:
        """The committed labels shaped like the image layer's non-channel axes (a view, not a copy)."""
        return self.annotations.labels.reshape(*self.info.lead_shape, *self.info.spatial_shape)
