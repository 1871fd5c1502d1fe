"""The session object both front ends share: one image (or stack), its embeddings, prompts → masks.

Coordinates at this API are napari's: points (row, col), boxes (min_row, min_col, max_row, max_col).
Large images and stacks are invisible here: ``set_image(big, cache=path)`` embeds tiles into a
persistent cache (see ``docs/large_images.md``); prompts anywhere are answered from the right tile or
from a window centred on their object.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch
from psygnal import Signal, SignalGroup

from napari_sam.annotations import Annotations
from napari_sam.background_encoding import BackgroundEncoding
from napari_sam.committed import CommittedObjects
from napari_sam.embeddings.embedder import Cancelled, WindowEmbeddings
from napari_sam.embeddings.preprocess import logits_to_window_masks
from napari_sam.embeddings.session_store import open_session_store, remove_temporary_store
from napari_sam.embeddings.store import EmbeddingStore
from napari_sam.geometry.coords import (
    as_boxes_rc,
    boxes_to_model_xyxy,
    image_to_model_xy,
    median_extent,
)
from napari_sam.geometry.tiling import TileGrid, window_for_box
from napari_sam.geometry.windows import Window, ZoomRule, whole_image_window
from napari_sam.image.normalize import IntensityScaling, PreparedImage
from napari_sam.image.planes import PlaneSource, make_source
from napari_sam.models import DEFAULT_MODEL
from napari_sam.models.device import decode_chunk
from napari_sam.models.loading import SamModel, load_model
from napari_sam.prediction.mask_prompt import mask_prompt
from napari_sam.prediction.progressive import ProgressivePrediction, Request, Stage
from napari_sam.prediction.propagation import Propagator
from napari_sam.prediction.refine import refine_request
from napari_sam.prediction.result import Prediction
from napari_sam.prompts import Prompts

__all__ = ["Segmenter", "SegmenterEvents", "Cancelled", "Stage"]


EXTENT_REACH = 512  # pixels: how far from where it was read a typical object size holds (typical_extent)


class SegmenterEvents(SignalGroup):
    """What a :class:`Segmenter` tells its front ends (psygnal signals; connect with ``.connect(slot)``).

    Signals may be emitted from the thread that did the work (a front end's worker): a slot that
    touches a UI hands the work to its UI thread.

    Signals
    -------
    image_set()
        A new image (or stack) was set: everything shown of the old one is stale.
    plane_changed(int)
        The plane in view changed (its index).
    embedding_progress(int, int)
        (done, total) windows or tiles embedded by :meth:`Segmenter.set_image`, :meth:`Segmenter.set_plane`
        or :meth:`Segmenter.encode_planes`.
    predicted(Stage)
        An answer of :meth:`Segmenter.predict_progressive` (or :meth:`Segmenter.predict`):
        ``stage.final`` False for the quick one.
    committed(list)
        The ids of the objects just committed.
    undone(int)
        The id of the object an undo removed.
    annotations_replaced()
        :attr:`Segmenter.annotations` is another object now (loaded, or a new image).
    """

    image_set = Signal()
    plane_changed = Signal(int)
    embedding_progress = Signal(int, int)
    predicted = Signal(object)
    committed = Signal(list)
    undone = Signal(int)
    annotations_replaced = Signal()


class Segmenter(CommittedObjects, BackgroundEncoding):
    """Prompt SAM on one 2D image.

    Parameters
    ----------
    model
        A loaded :class:`~napari_sam.models.loading.SamModel`, a registry name or a checkpoint path
        (default: ``lite_medsam``).
    zoom
        The :class:`~napari_sam.geometry.windows.ZoomRule`; ``True`` for the default rule, ``False`` to always
        answer from the whole image.
    device, precision, backend
        Used only when ``model`` is a name or path (see :func:`~napari_sam.models.loading.load_model`).
    batch_size
        Tiles / windows per encoder forward pass.

    Examples
    --------
    >>> seg = Segmenter(load_model("lite_medsam"))
    >>> seg.set_image(image)
    >>> res = seg.predict(box=(10, 20, 40, 60))
    >>> res.masks.shape      # (1, H, W) bool
    """

    def __init__(
        self,
        model: SamModel | str | None = None,
        *,
        zoom: ZoomRule | bool = True,
        device: str = "auto",
        batch_size: int = 4,
        precision: str = "auto",
        backend: str = "auto",
    ) -> None:
        if model is None or not isinstance(model, SamModel):
            model = load_model(model or DEFAULT_MODEL, device=device, precision=precision, backend=backend)
        self.model = model
        if isinstance(zoom, bool):
            zoom = ZoomRule(enabled=zoom)
        self.zoom = zoom
        self.batch_size = batch_size
        self.source: PlaneSource | None = None
        self.grid: TileGrid | None = None
        self.store: EmbeddingStore | None = None
        self.embeddings: WindowEmbeddings | None = None
        self.last_prediction: Prediction | None = None
        self._annotations: Annotations | None = None
        self._plane = 0
        self.lead_shape: tuple[int, ...] = ()
        self._temp_cleanup = None
        # True while iter_encode_view_first waits for a quiet moment (front ends say why nothing moves)
        self.background_waiting = False
        self.events = SegmenterEvents()
        self.propagator = Propagator(self)

    # -- image -------------------------------------------------------------------------------------
    def set_image(
        self,
        image,
        *,
        channel_axis: int | None = None,
        scaling: IntensityScaling | None = None,
        progress: Callable[[int, int], None] | None = None,
        cache: str | os.PathLike | None = None,
        stack_axis: int | None = None,
        plane_axes: int | None = None,
        plane: int | tuple[int, ...] = 0,
        tile_size: int | None = None,
        halo: int | None = None,
        encode: bool = True,
        should_stop: Callable[[], bool] | None = None,
        cache_dtype: str = "float16",
    ) -> None:
        """Validate and scale ``image`` (one global scaling), then embed the plane in view.

        Images up to 2·S pixels on their longest side are encoded as one whole-image window (zoom
        windows come on demand); larger ones as a grid of S-pixel tiles with a halo, written to a
        persistent zarr cache (``cache``) or to a temporary one.

        Parameters
        ----------
        image
            2D: (H, W), (H, W, 3|4) or multichannel with ``channel_axis``. A stack with ``stack_axis``.
            numpy, dask or zarr (e.g. :func:`napari_sam.io.images.read_image` of a TIFF); any numeric dtype,
            NaN/inf allowed. Lazy data is read region by region, never whole.
        channel_axis
            The channel axis (in ``image``'s axes).
        scaling
            A recorded :class:`~napari_sam.image.normalize.IntensityScaling` to reuse instead of computing
            one.
        progress
            Called as ``progress(done, total)`` while encoding.
        cache
            A folder (``*.zarr``) for the tile embeddings: reopened when it matches this image, model and
            settings (no encoder runs for finished tiles), resumed when unfinished, rebuilt when stale.
        stack_axis
            The plane axis of a (Z, Y, X) / (T, Y, X) stack.
        plane_axes
            Instead of ``stack_axis``: the number of leading axes that index planes, e.g. 2 for a
            (T, Z, Y, X) image (T·Z planes, addressed by (t, z) or by flat index; see
            :meth:`plane_index`). 0 or None: no leading axes (with no ``stack_axis``, a 2D image).
        plane
            The plane in view (embedded first): an index, or the leading indices.
        tile_size, halo
            Force a tile grid: tile side in image pixels (``k·S`` embeds at 1/k scale) and halo
            (default ``tile_size // 8``).
        encode
            Embed the plane in view now (True), or only on demand (False; see :meth:`encode_planes`).
        should_stop
            Polled between batches; True cancels with :class:`~napari_sam.embeddings.embedder.Cancelled`
            (finished tiles stay in the cache).
        cache_dtype
            ``"float16"`` or ``"float32"`` embeddings on disk.
        """
        lead_shape: tuple[int, ...] = ()
        if plane_axes:
            if stack_axis is not None:
                raise ValueError("give stack_axis or plane_axes, not both")
            lead_shape = tuple(int(n) for n in image.shape[:plane_axes])
            if len(lead_shape) > 1:
                image = image.reshape(int(np.prod(lead_shape)), *image.shape[plane_axes:])
            stack_axis = 0
            if channel_axis is not None and channel_axis >= plane_axes:
                channel_axis = channel_axis - plane_axes + 1
        source = make_source(image, stack_axis=stack_axis, channel_axis=channel_axis, scaling=scaling)
        if source.is_stack and not lead_shape:
            lead_shape = (source.num_planes,)
        s = self.model.input_size
        grid = TileGrid.for_image(source.plane_shape, s, tile_size, halo)
        self._release_temp_store()
        store = None
        if cache is not None or not grid.is_single or source.is_stack:
            store = self._open_store(source, grid, cache, cache_dtype)
        self.source, self.grid, self.store = source, grid, store
        self.embeddings = WindowEmbeddings(
            self.model, source.plane, grid=grid, store=store, batch_size=self.batch_size
        )
        self.last_prediction = None
        self._estimated_extent: tuple[int, tuple[int, int], float] | None = (
            None  # typical_extent: plane, where, size
        )
        self.lead_shape = lead_shape
        h, w = source.plane_shape
        self._annotations = Annotations((source.num_planes, h, w) if source.is_stack else (h, w))
        self._plane = self.plane_index(plane)
        self.events.image_set.emit()
        self.events.annotations_replaced.emit()
        if encode:
            self._encode_plane(self._plane, progress, should_stop)

    def _open_store(self, source: PlaneSource, grid: TileGrid, cache, dtype: str) -> EmbeddingStore:
        store, temporary = open_session_store(self.model, source, grid, cache, dtype)
        if temporary:
            self._temp_cleanup = weakref.finalize(self, remove_temporary_store, store)
        return store

    def _release_temp_store(self) -> None:
        if self._temp_cleanup is not None:
            self._temp_cleanup()
            self._temp_cleanup = None

    def _encode_plane(self, plane: int, progress=None, should_stop=None) -> int:
        progress = self._reporting(progress)
        if self.store is None:  # a small 2D image: the whole-image window, in memory
            return self.embeddings.encode(
                [self.whole_window], progress=progress, should_stop=should_stop, plane=plane
            )
        return self.embeddings.encode_tiles(plane, progress=progress, should_stop=should_stop)

    def _reporting(self, progress: Callable[[int, int], None] | None) -> Callable[[int, int], None]:
        """``progress`` and the :attr:`events` ``embedding_progress`` signal, as one callback."""

        def report(done: int, total: int) -> None:
            if progress is not None:
                progress(done, total)
            self.events.embedding_progress.emit(done, total)

        return report

    # -- planes ------------------------------------------------------------------------------------
    @property
    def is_stack(self) -> bool:
        return self._require_image().is_stack

    @property
    def num_planes(self) -> int:
        """Planes of the stack (1 for a 2D image)."""
        return self._require_image().num_planes

    @property
    def plane(self) -> int:
        """The plane in view (0 for a 2D image)."""
        return self._plane

    def plane_index(self, plane: int | tuple[int, ...]) -> int:
        """The flat plane index of ``plane``: an index, or the leading indices of an image set with
        ``plane_axes`` (``()`` for a 2D image); ``ValueError`` for a plane that does not exist.
        """
        src = self._require_image()
        if isinstance(plane, int | np.integer):
            return src.check_plane(int(plane))
        index = tuple(int(v) for v in plane)
        if not index:
            return src.check_plane(0)
        if len(index) != len(self.lead_shape) or any(not 0 <= v < n for v, n in zip(index, self.lead_shape)):
            raise ValueError(
                f"plane {index} does not exist: the planes of this image are indexed by {self.lead_shape}"
            )
        return int(np.ravel_multi_index(index, self.lead_shape))

    def set_plane(
        self,
        plane: int | tuple[int, ...],
        *,
        encode: bool = True,
        progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        """Move the view to ``plane``; with ``encode`` its unfinished tiles are embedded now."""
        before, self._plane = self._plane, self.plane_index(plane)
        if self._plane != before:
            self.events.plane_changed.emit(self._plane)
        if encode:
            self._encode_plane(self._plane, progress, should_stop)

    @property
    def image(self) -> PreparedImage | None:
        """The prepared plane in view (the image itself for 2D), or None before :meth:`set_image`."""
        return None if self.source is None else self.source.plane(self._plane)

    @property
    def image_shape(self) -> tuple[int, int]:
        """(H, W) of the image (of one plane for a stack)."""
        return self._require_image().plane_shape

    @property
    def whole_window(self) -> Window:
        return whole_image_window(self.image_shape)

    def typical_extent(self, plane: int, around: tuple[float, float]) -> float:
        """The extent in pixels (longest box side) a new object is likely to have: the median of the
        committed objects' when there are some, else the typical object diameter read from the image
        around ``around`` = (row, col) of ``plane`` (blob scale of the 256-px region centred there, about
        0.1 s; kept, and reused for points within ``EXTENT_REACH`` = 512 px of it); 0.0 when nothing stands
        out there. It lets a click on a region not embedded yet go straight to its zoom window (one encoder
        pass instead of the tile's and then the zoom window's). A front end may call it before the first
        click, where the user looks, so that the click does not wait for it.
        """
        objects = self._annotations.objects if self._annotations is not None else []
        if objects:
            return median_extent([o.bbox for o in objects])
        r, c = (int(round(v)) for v in around)
        known = self._estimated_extent
        if known is not None:
            k_plane, (kr, kc), extent = known
            if k_plane == plane and max(abs(r - kr), abs(c - kc)) <= EXTENT_REACH:
                return extent
        from napari_sam.automatic.polarity import bright_objects
        from napari_sam.automatic.scale import estimate_diameter

        crop = self._require_image().plane(plane).region(r - 128, r + 128, c - 128, c + 128)
        extent = estimate_diameter(bright_objects(crop)[0])
        self._estimated_extent = (plane, (r, c), extent)
        return extent

    def _require_image(self) -> PlaneSource:
        if self.source is None:
            raise ValueError("no image yet: call set_image(image) before predict()")
        return self.source

    # -- prompts → masks ---------------------------------------------------------------------------
    def predict(
        self,
        points=None,
        labels=None,
        box=None,
        mask_input=None,
        multimask: bool = False,
        *,
        plane: int | tuple[int, ...] | None = None,
        zoom: bool = True,
    ) -> Prediction:
        """Masks for prompts given in image pixels (of ``plane`` for a stack, default the plane in view).

        Parameters
        ----------
        points
            (N, 2) (row, col) points of one object, or None; or a :class:`~napari_sam.prompts.Prompts`
            (then ``labels``, ``box`` and ``mask_input`` stay None; its plane is used).
        labels
            (N,) 1 for positive, 0 for negative points (default: all positive).
        box
            (min_row, min_col, max_row, max_col) of one object, or (K, 4) for K objects decoded as one
            batch (points, if any, then belong to a single box).
        mask_input
            (256, 256) or (1, 256, 256) low-res logits from an earlier prediction of the same object
            (``Prediction.logits[k, m]``), in that prediction's window; or that :class:`Prediction`.
        multimask
            Return the three ambiguity-aware candidates instead of one mask.
        plane
            The plane of a stack the prompts are on (an index, or the leading indices, see
            :meth:`plane_index`).
        zoom
            Whether the zoom rule (:attr:`zoom`) may answer from a window around the object. False answers
            from the whole image (or the tile that holds the object): coarser, but from embeddings that
            are usually computed already.

        Returns
        -------
        Prediction
            ``masks`` (K, H, W) bool (or (K, 3, H, W) with ``multimask``), ``scores`` (K, M) predicted
            IoU, ``logits`` (K, M, 256, 256); ``plane`` the plane it answers.

        See Also
        --------
        predict_progressive : a quick answer first, then this one; cancellable.
        """
        return self.predict_progressive(
            points, labels, box, mask_input, multimask, plane=plane, zoom=zoom, quick=False
        ).result()

    def predict_progressive(
        self,
        points=None,
        labels=None,
        box=None,
        mask_input=None,
        multimask: bool = False,
        *,
        plane: int | tuple[int, ...] | None = None,
        zoom: bool = True,
        quick: bool = True,
        should_stop: Callable[[], bool] | None = None,
    ) -> ProgressivePrediction:
        """The answer to prompts in stages: first from embeddings already computed (the whole image, or
        the tile under the object), then from the object's zoom window, encoded on demand.

        Takes the arguments of :meth:`predict` (a :class:`~napari_sam.prompts.Prompts` first, or keyword
        arguments) and checks them now (``ValueError``); nothing is decoded until iterated. Iterate it
        for :class:`~napari_sam.prediction.progressive.Stage` s (``stage.final`` False for the quick
        answer), or call ``.result()``; ``.ready`` tells whether the next stage is decoder passes only
        (a UI can run it on its main thread and hand the rest to a worker); ``.cancel()`` or
        ``should_stop`` end it at the next step. The click → box search and the first answer are
        computed once for both stages.

        Examples
        --------
        >>> run = seg.predict_progressive(Prompts.build(points=[(120, 80)]))
        >>> for stage in run:
        ...     show(stage.prediction, provisional=not stage.final)
        """
        src = self._require_image()
        request, note = self._request(points, labels, box, mask_input, multimask, plane, src)
        rule = self.zoom if zoom else ZoomRule(enabled=False)
        run = ProgressivePrediction(self, request, rule, quick=quick, should_stop=should_stop)
        run.note = note
        return run

    def _request(self, points, labels, box, mask_input, multimask, plane, src: PlaneSource):
        """The prompts (a :class:`~napari_sam.prompts.Prompts`, or keyword arguments built into one:
        the one place they are checked) → (:class:`~napari_sam.prediction.progressive.Request`, note).
        """
        if isinstance(points, Prompts):
            if labels is not None or box is not None:
                raise ValueError("give the prompts as a Prompts or as keyword arguments, not both")
            prompts, strict = points, False
        else:  # keyword arguments: prompts that would be ignored are an error, not a note
            prompts, strict = Prompts.build(points, labels, box), True
        asked = prompts.on_image(src.plane_shape).decoder_request(strict=strict)
        boxes = asked.boxes
        refine = None
        if asked.refines is not None:  # a committed object corrected: its mask is where it starts
            if mask_input is not None:
                raise ValueError("a refined object's mask is itself the mask prompt: no mask_input")
            refine = refine_request(self, asked)
            boxes, mask_input = refine.boxes, refine.mask_input
            asked = replace(asked, points=refine.points, labels=refine.labels)
        elif asked.mask is not None:
            if mask_input is not None:
                raise ValueError("a drawn mask is itself the mask prompt: pass it or mask_input, not both")
            drawn = mask_prompt(self, asked.mask)
            boxes, mask_input = as_boxes_rc(drawn["box"]), drawn["mask_input"]
        if plane is None and prompts.plane:
            plane = prompts.plane
        plane = self._plane if plane is None else self.plane_index(plane)
        src.check_content(plane)  # an all-NaN or constant plane: a ValueError, never a confident mask
        lab = None if asked.labels is None else asked.labels.astype(np.int64)
        window, mask_logits = self._mask_prompt(mask_input)
        request = Request(asked.points, lab, boxes, window, mask_logits, bool(multimask), plane)
        if refine is not None:
            request.grow_from, request.answer = refine.grow_from, refine.answer
        return request, asked.note

    def window_for_box(self, box, zoom: ZoomRule | None = None) -> Window:
        """The window an object with bounding box ``box`` (min_row, min_col, max_row, max_col) is answered
        from: a zoom window (by ``zoom``, default :attr:`zoom`), the tile whose core holds it, or a window
        centred on it when it crosses a seam (see :func:`napari_sam.geometry.tiling.window_for_box`).
        """
        self._require_image()
        return window_for_box(
            as_boxes_rc(box)[0], self.grid, self.zoom if zoom is None else zoom, self.model.input_size
        )

    def _mask_prompt(self, mask_input) -> tuple[Window | None, torch.Tensor | None]:
        if mask_input is None:
            return None, None
        if isinstance(mask_input, Prediction):
            pred = mask_input
            logits = pred.logits[0, pred.best_index(0)]
            window = pred.windows[0]
        else:
            if self.last_prediction is None:
                raise ValueError(
                    "mask_input logits need an earlier prediction (their window); pass the Prediction"
                )
            logits = np.asarray(mask_input, dtype=np.float32)
            window = self.last_prediction.windows[0]
        logits = np.asarray(logits, dtype=np.float32).reshape(-1, *np.shape(logits)[-2:])
        if logits.shape != (1, 256, 256):
            raise ValueError(f"mask_input must be low-res logits of shape (256, 256); got {logits.shape}")
        return window, torch.from_numpy(logits)[None].to(self.model.device)

    def needs_box_search(self, points=None, box=None, mask_input=None) -> bool:
        """Whether these prompts make a box-trained model search the box under the clicks
        (:mod:`napari_sam.prediction.point_box`): a batch of decoder passes, about ten times one
        prompt's cost.
        """
        return (
            self.model.spec.box_prompts_only
            and points is not None
            and len(points) > 0
            and (box is None or np.size(box) == 0)
            and mask_input is None
        )

    def _decode_many(
        self, windows: list[Window], boxes: np.ndarray, pts, lab, mask_logits, multimask, plane: int = 0
    ) -> Prediction:
        """Decode K boxes, grouped by window so each embedding is used by one batched decoder call."""
        order: dict[Window, list[int]] = {}
        for i, w in enumerate(windows):
            order.setdefault(w, []).append(i)
        parts: dict[int, tuple] = {}
        for window, idx in order.items():
            group = self._decode_group(
                window, [boxes[i] for i in idx], pts, lab, mask_logits, multimask, plane
            )
            for j, i in enumerate(idx):
                parts[i] = (group.crops[j], group.offsets[j], group.scores[j], group.logits[j])
        k = len(boxes)
        return Prediction(
            [parts[i][0] for i in range(k)],
            [parts[i][1] for i in range(k)],
            np.stack([parts[i][2] for i in range(k)]),
            np.stack([parts[i][3] for i in range(k)]),
            list(windows),
            self.image_shape,
        )

    @torch.inference_mode()
    def _decode_group(
        self, window: Window, boxes: list, pts, lab, mask_logits, multimask: bool, plane: int = 0
    ) -> Prediction:
        """Decode B objects sharing ``window`` (B = number of boxes, or 1 for points only).

        On a CPU they go through the decoder a few at a time (:func:`napari_sam.models.device.decode_chunk`).
        """
        s = self.model.input_size
        scale = window.scale(s)
        origin = (window.row0, window.col0)
        dev = self.model.device
        b = len(boxes)
        xy = labels = box_xyxy = None
        if pts is not None:
            xy = torch.as_tensor(image_to_model_xy(pts, origin, scale), dtype=torch.float32, device=dev)[None]
            labels = torch.as_tensor(lab, device=dev)[None]
        if boxes[0] is not None:
            box_xyxy = torch.as_tensor(
                boxes_to_model_xyxy(np.stack(boxes), origin, scale), dtype=torch.float32, device=dev
            )
        emb = self.embeddings.get(window, plane)
        chunk = decode_chunk(dev, b)
        crops, scores, logits = [], [], []
        for i in range(0, b, chunk):
            n = min(chunk, b - i)
            point_arg = None if xy is None else (xy.expand(n, -1, -1), labels.expand(n, -1))
            box_arg = None if box_xyxy is None else box_xyxy[i : i + n]
            masks_arg = None if mask_logits is None else mask_logits.expand(n, -1, -1, -1)
            part, iou = self.model.decode(emb, point_arg, box_arg, masks_arg, multimask)
            crops += list(logits_to_window_masks(part, window, self.image_shape, s))
            scores.append(iou.float().cpu().numpy())
            logits.append(part.float().cpu().numpy())
        return Prediction(
            crops,
            [origin] * b,
            np.concatenate(scores),
            np.concatenate(logits),
            [window] * b,
            self.image_shape,
        )

    # -- stacks ------------------------------------------------------------------------------------
    def propagate(
        self, mask_or_prediction: Prediction | np.ndarray | None = None, **kwargs
    ) -> dict[int, np.ndarray]:
        """Follow one object from its plane through the stack: plane → (H, W) bool mask, the start plane
        included (see :meth:`napari_sam.prediction.propagation.Propagator.propagate` for the options).
        """
        return self.propagator.propagate(mask_or_prediction, **kwargs)
