"""The annotator's session: one image layer and one :class:`~napari_sam.segmenter.Segmenter` over its
planes (leading axes flattened by the Segmenter), which holds the committed objects. No Qt here: the
widget calls these methods from its workers and its main thread, and listens to ``segmenter.events``.

Thread rules (the widget keeps them): ``encode_plane``/``propagate`` run in one worker at a time; a
preview's :class:`~napari_sam.prediction.progressive.ProgressivePrediction` is stepped on the main thread
while its next stage is decoder passes only, in a worker otherwise; ``commit``/``undo`` run on the main
thread.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from napari_sam._napari._layers import ImageInfo
from napari_sam.prediction.result import Prediction
from napari_sam.prompts import Prompts

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
        dask. Several leading axes (e.g. T, Z) are planes of one stack (the Segmenter flattens them).
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
        self._data = data
        self._ready: set[int] = set()
        self._loaded = False
        self._kept_annotations = annotations
        self.cache = cache

    # -- planes and embeddings ---------------------------------------------------------------------
    def is_ready(self, plane: tuple[int, ...]) -> bool:
        """Whether prompts on ``plane`` can be answered now: a large (tiled) image can be prompted as
        soon as it is opened (each prompt embeds its own window when needed); a small plane once embedded.
        """
        if not self._loaded:
            return False
        return self.segmenter.is_tiled or self.segmenter.plane_index(plane) in self._ready

    @property
    def is_tiled(self) -> bool:
        """Whether planes are embedded as tiles (in the background, see ``_napari/_background.py``)."""
        return self._loaded and self.segmenter.is_tiled

    def encode_plane(
        self, plane: tuple[int, ...], progress: Progress = None, should_stop: Stop = None
    ) -> None:
        """Make ``plane`` ready for prompts: the first call validates the image, computes its global
        intensity scaling and opens the embedding store. A small plane is embedded now (seconds on a
        CPU); a large (tiled) one is not: its tiles are embedded in the background, view first.
        """
        seg = self.segmenter
        if not self._loaded:
            seg.set_image(
                self._data,
                plane_axes=len(self.info.lead_shape) or None,
                plane=tuple(plane),
                cache=self.cache,
                encode=False,
            )
            kept = self._kept_annotations
            if kept is not None and kept.labels.shape == seg.labels.shape:
                seg.annotations = kept
            self._loaded = True
        seg.set_plane(tuple(plane), encode=not seg.is_tiled, progress=progress, should_stop=should_stop)
        self._ready.add(seg.plane)

    def use_model(self, model) -> bool:
        """Answer prompts with ``model`` from now on, keeping the committed objects and the embeddings,
        when ``model`` runs the image encoder that computed them (a decoder-only fine-tune of the
        session's model: :func:`napari_sam.finetune.identity.keeps_embeddings`). Returns False, changing
        nothing, when the image must be embedded again with ``model`` (or was not embedded yet): then the
        widget opens a new session with it, this session's objects kept.
        """
        from napari_sam.finetune.identity import keeps_embeddings
        from napari_sam.finetune.tuned_model import use_in_session

        if not self._loaded or not keeps_embeddings(self.model, model):
            return False
        use_in_session(self.segmenter, model)
        self.model = model
        return True

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
    def predict_progressive(self, prompts: Prompts, multimask: bool = False):
        """The core's :class:`~napari_sam.prediction.progressive.ProgressivePrediction` for ``prompts``
        (checked now: ``ValueError`` with a message for the user); ``.note`` says what was not used.
        """
        if prompts.is_empty:
            raise ValueError("no prompts: click on an object or draw a box")
        if not self.is_ready(prompts.plane):
            where = f" of plane {prompts.plane}" if prompts.plane else ""
            raise ValueError(f"no embeddings{where} yet: press 'Compute embeddings' first")
        return self.segmenter.predict_progressive(prompts, multimask=multimask)

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
        return self.segmenter.propagate(prediction, plane=plane, progress=progress, should_stop=should_stop)

    # -- committed objects -------------------------------------------------------------------------
    def commit(self, prediction: Prediction, prompts: Prompts, candidate: int | None = None) -> list[int]:
        """Commit every object of ``prediction`` (candidate ``candidate`` or the best) under new ids
        (see :meth:`~napari_sam.segmenter.Segmenter.commit_objects`).
        """
        return self.segmenter.commit_objects(
            prediction, candidate=candidate, prompts=prompts, plane=prompts.plane
        )

    def commit_planes(self, masks: dict[int, np.ndarray], prompts: Prompts | None = None) -> int:
        """Commit a propagation result as one object with one id on every plane; returns the id."""
        return self.segmenter.commit_planes(masks, prompts)

    def undo(self) -> int | None:
        """Remove the last committed object; its id or None."""
        return self.segmenter.undo() if self._loaded else None

    @property
    def labels_view(self) -> np.ndarray:
        """The committed labels shaped like the image layer's non-channel axes (a view, not a copy)."""
        return self.annotations.labels.reshape(*self.info.lead_shape, *self.info.spatial_shape)
