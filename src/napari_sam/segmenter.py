"""The session object both front ends share: one image (or stack), its embeddings, prompts → masks.

Coordinates at this API are napari's: points (row, col), boxes (min_row, min_col, max_row, max_col).
Large images and stacks are invisible here: ``set_image(big, cache=path)`` embeds tiles into a
persistent cache (see ``docs/large_images.md``); prompts anywhere are answered from the right tile or
from a window centred on their object.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import torch

from napari_sam.annotations import Annotations
from napari_sam.embeddings.embedder import Cancelled, WindowEmbeddings
from napari_sam.embeddings.preprocess import logits_to_window_masks
from napari_sam.embeddings.store import PREPROCESSING_VERSION, EmbeddingStore, fingerprint
from napari_sam.geometry.coords import (
    as_boxes_rc,
    as_points_rc,
    boxes_to_model_xyxy,
    image_to_model_xy,
    mask_bbox,
)
from napari_sam.geometry.tiling import TileGrid, _stepped_side, clipped_by, window_for_box
from napari_sam.geometry.windows import Window, ZoomRule, centred_window, whole_image_window
from napari_sam.image.normalize import IntensityScaling, PreparedImage
from napari_sam.image.planes import PlaneSource, make_source
from napari_sam.models.device import decode_chunk
from napari_sam.models.loading import SamModel, load_model
from napari_sam.prediction.point_box import pick_box, search_boxes
from napari_sam.prediction.propagation import StackMethods
from napari_sam.prediction.result import Prediction

__all__ = ["Segmenter", "Cancelled"]


class Segmenter(StackMethods):
    """Prompt SAM on one 2D image.

    Parameters
    ----------
    model
        A loaded :class:`~napari_sam.models.loading.SamModel`, a registry name or a checkpoint path
        (default: ``lite_medsam``).
    zoom
        The :class:`~napari_sam.geometry.windows.ZoomRule`; ``True`` for the default rule, ``False`` to always
        answer from the whole image.
    device, precision
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
    ) -> None:
        if model is None or not isinstance(model, SamModel):
            model = load_model(model or "lite_medsam", device=device, precision=precision)
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
        self.annotations: Annotations | None = None
        self._plane = 0
        # clicks → box for box-trained models: the last few searches, so asking again (a decode-only
        # attempt, then a coarse answer, then the zoomed one) searches once
        self._box_searches: OrderedDict[tuple, tuple | None] = OrderedDict()
        self._temp_cleanup = None

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
        plane: int = 0,
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
            A recorded :class:`~napari_sam.image.normalize.IntensityScaling` to reuse instead of computing one.
        progress
            Called as ``progress(done, total)`` while encoding.
        cache
            A folder (``*.zarr``) for the tile embeddings: reopened when it matches this image, model and
            settings (no encoder runs for finished tiles), resumed when unfinished, rebuilt when stale.
        stack_axis
            The plane axis of a (Z, Y, X) / (T, Y, X) stack.
        plane
            The plane in view (embedded first).
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
        source = make_source(image, stack_axis=stack_axis, channel_axis=channel_axis, scaling=scaling)
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
        self._box_searches.clear()
        h, w = source.plane_shape
        self.annotations = Annotations((source.num_planes, h, w) if source.is_stack else (h, w))
        self._plane = source.check_plane(plane)
        if encode:
            self._encode_plane(self._plane, progress, should_stop)

    def _open_store(self, source: PlaneSource, grid: TileGrid, cache, dtype: str) -> EmbeddingStore:
        temporary = cache is None
        if temporary:
            cache = os.path.join(tempfile.mkdtemp(prefix="napari-sam-"), "embeddings.zarr")
            self._temp_cleanup = weakref.finalize(self, shutil.rmtree, os.path.dirname(cache), True)
        spec = self.model.spec
        signature = {
            "model": {
                "name": spec.name,
                "checkpoint_sha256": self.model.checkpoint_sha256,
                # bf16 embeddings differ slightly from fp32 ones (fp32 caches keep their old signature)
                **({"precision": self.model.precision} if self.model.precision != "fp32" else {}),
                "input_size": spec.input_size,
                "pixel_mean": list(spec.pixel_mean),
                "pixel_std": list(spec.pixel_std),
                "encoder": repr(spec.encoder),
            },
            "preprocessing": {
                "version": PREPROCESSING_VERSION,
                "scaling": source.scaling.to_dict(),
                "channel_axis": source.layout.channel_axis,
                "channels": list(source.layout.channels),
            },
            "grid": grid.to_dict(),
            "data": {
                "shape": [int(v) for v in source.data.shape],
                "dtype": str(np.dtype(source.data.dtype)),
                "stack_axis": source.stack_axis,
                "fingerprint": "temporary" if temporary else fingerprint(source.data),
            },
        }
        return EmbeddingStore.open(cache, signature, source.num_planes, len(grid), dtype=dtype)

    def _release_temp_store(self) -> None:
        if self._temp_cleanup is not None:
            self._temp_cleanup()
            self._temp_cleanup = None

    def _encode_plane(self, plane: int, progress=None, should_stop=None) -> int:
        if self.store is None:  # a small 2D image: the whole-image window, in memory
            return self.embeddings.encode(
                [self.whole_window], progress=progress, should_stop=should_stop, plane=plane
            )
        return self.embeddings.encode_tiles(plane, progress=progress, should_stop=should_stop)

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
        plane: int | None = None,
        encode: bool = True,
        zoom: bool = True,
    ) -> Prediction:
        """Masks for prompts given in image pixels (of ``plane`` for a stack, default the plane in view).

        Parameters
        ----------
        points
            (N, 2) (row, col) points of one object, or None.
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
            The plane of a stack the prompts are on.
        encode
            Whether windows whose embeddings are not computed yet (a zoom window, a tile) may be encoded
            now. With False the call only decodes (milliseconds) and raises
            :class:`~napari_sam.embeddings.embedder.EmbeddingNotReady` where an embedding is missing — for a UI that
            answers from its main thread when it can and from a worker when it must.
        zoom
            Whether the zoom rule (:attr:`zoom`) may answer from a window around the object. False answers
            from the whole image (or the tile that holds the object): a coarser mask, but from embeddings
            that are usually computed already — a quick first preview while the zoom window is encoded.

        Returns
        -------
        Prediction
            ``masks`` (K, H, W) bool (or (K, 3, H, W) with ``multimask``), ``scores`` (K, M) predicted
            IoU, ``logits`` (K, M, 256, 256); ``plane`` the plane it answers.
        """
        src = self._require_image()
        rule = self.zoom if zoom else ZoomRule(enabled=False)
        with self.embeddings.encoding_allowed(encode):
            return self._predict(src, points, labels, box, mask_input, multimask, plane, rule)

    def _predict(
        self,
        src: PlaneSource,
        points,
        labels,
        box,
        mask_input,
        multimask: bool,
        plane: int | None,
        rule: ZoomRule,
    ) -> Prediction:
        plane = self._plane if plane is None else src.check_plane(plane)
        pts = lab = None
        if points is not None and len(points) > 0:
            pts = as_points_rc(points)
            lab = (
                np.ones(len(pts), dtype=np.int64)
                if labels is None
                else np.asarray(labels, dtype=np.int64).ravel()
            )
            if lab.shape != (len(pts),):
                raise ValueError(f"labels must give one 1/0 per point: {len(pts)} points, {lab.size} labels")
            if not np.isin(lab, (0, 1)).all():
                raise ValueError(
                    f"labels must be 1 (positive) or 0 (negative); got {sorted(set(lab.tolist()))}"
                )
        boxes = as_boxes_rc(box) if box is not None and np.size(box) > 0 else None
        if pts is None and boxes is None:
            raise ValueError("give at least one point or a box")
        if pts is not None and boxes is not None and len(boxes) > 1:
            raise ValueError(f"points belong to one object, but {len(boxes)} boxes were given; pass one box")
        prev_window, mask_logits = self._mask_prompt(mask_input)
        if pts is not None and self.model.spec.box_prompts_only:
            # Box-trained models: points only locate the object's box (napari_sam.prediction.point_box).
            if boxes is None and prev_window is None:
                found = self._box_from_points(pts, lab, plane)
                boxes = None if found is None else as_boxes_rc(found)
            if boxes is not None:
                pts = lab = None

        if boxes is None:  # one object prompted by points
            window = prev_window or self._window_for_points(pts, lab, plane, rule)
            pred = self._decode_group(window, [None], pts, lab, mask_logits, multimask, plane)
        else:
            windows = (
                [prev_window] * len(boxes)
                if prev_window is not None
                else [self.window_for_box(b, rule) for b in boxes]
            )
            pred = self._decode_many(windows, boxes, pts, lab, mask_logits, multimask, plane)
        pred.plane = plane
        self.last_prediction = pred
        return pred

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
        (:mod:`napari_sam.prediction.point_box`): a batch of decoder passes, about ten times one prompt's cost.
        """
        return (
            self.model.spec.box_prompts_only
            and points is not None
            and len(points) > 0
            and (box is None or np.size(box) == 0)
            and mask_input is None
        )

    def _box_from_points(self, pts: np.ndarray, lab: np.ndarray, plane: int) -> tuple | None:
        """For box-trained models: the box of the object under the positive points (see point_box)."""
        positives, negatives = pts[lab == 1], pts[lab == 0]
        if len(positives) == 0:
            return None
        grid = self.grid
        first = self.whole_window if grid.is_single else grid.tile(grid.tile_at(*positives.mean(axis=0)))
        key = (plane, first, pts.tobytes(), lab.tobytes())
        if key in self._box_searches:
            return self._box_searches.get(key)
        boxes = search_boxes(positives, max_side=first.size / 2)
        answer = self._decode_group(first, list(boxes), None, None, None, False, plane)
        found = pick_box(
            boxes, [c[0] for c in answer.crops], answer.offsets, answer.scores[:, 0], positives, negatives
        )
        self._box_searches[key] = found
        while len(self._box_searches) > 8:  # the oldest searches go first
            try:
                self._box_searches.popitem(last=False)
            except KeyError:  # emptied by another thread meanwhile
                break
        return found

    def _first_answer(self, window: Window, pts, lab, plane: int) -> tuple[int, int, int, int] | None:
        first = self._decode_group(window, [None], pts, lab, None, False, plane)
        bbox = mask_bbox(first.crops[0][0])
        if bbox is None:
            return None
        r, c = first.offsets[0]
        return bbox[0] + r, bbox[1] + c, bbox[2] + r, bbox[3] + c

    def _window_for_points(self, pts: np.ndarray, lab: np.ndarray, plane: int, rule: ZoomRule) -> Window:
        """Zoom for point prompts: a first answer (whole image, or the tile whose core holds the points)
        tells the object's size; an object cut by that tile's edge is looked at again from a window
        centred on it.
        """
        grid, shape = self.grid, self.image_shape
        positives = pts[lab == 1] if (lab == 1).any() else pts
        if grid.is_single and not rule.enabled:
            return self.whole_window
        centre = positives.mean(axis=0)
        first = self.whole_window if grid.is_single else grid.tile(grid.tile_at(*centre))
        bbox = self._first_answer(first, pts, lab, plane)
        for _ in range(2):  # the object crosses a seam: look again, centred on what was found
            if bbox is None or grid.is_single or not clipped_by(first, bbox, shape):
                break
            extent = max(bbox[2] - bbox[0] + 1, bbox[3] - bbox[1] + 1)
            side = max(grid.tile_size, _stepped_side(2 * extent, grid.tile_size))
            wider = centred_window(bbox, shape, side)
            if wider == first:
                break
            first = wider
            bbox = self._first_answer(first, pts, lab, plane) or bbox
        if bbox is None:  # nothing found at this scale: look closer around the points
            r0, c0 = positives.min(axis=0)
            r1, c1 = positives.max(axis=0)
            bbox = (r0, c0, r1, c1)
        window = self.window_for_box(bbox, rule)
        if not all(window.contains_box((p[0], p[1], p[0], p[1])) for p in positives):
            return first
        return window

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
            part, iou = self.model.network.decode(emb, point_arg, box_arg, masks_arg, multimask)
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

    # -- committed objects -------------------------------------------------------------------------
    @property
    def labels(self) -> np.ndarray:
        """(H, W) int32 label image of the committed objects (0 = background); (P, H, W) for a stack."""
        self._require_image()
        return self.annotations.labels

    def commit(
        self,
        prediction: Prediction | np.ndarray | None = None,
        *,
        k: int = 0,
        candidate: int | None = None,
        prompts: dict | None = None,
        plane: int | None = None,
    ) -> int:
        """Commit a mask as a new object and return its id.

        ``prediction`` is a :class:`Prediction` (object ``k``, candidate ``candidate`` or the best one),
        an (H, W) bool mask, or None for the last prediction. For a stack the mask goes on ``plane``
        (default: the prediction's plane, else the plane in view).
        """
        src = self._require_image()
        prediction = self.last_prediction if prediction is None else prediction
        if prediction is None:
            raise ValueError("nothing to commit: predict() first or pass a mask")
        if isinstance(prediction, Prediction):
            m = prediction.best_index(k) if candidate is None else candidate
            mask, score = prediction.mask(k, m), float(prediction.scores[k, m])
        else:
            mask, score = np.asarray(prediction, dtype=bool), None
        if not src.is_stack:
            return self.annotations.commit(mask, score=score, prompts=prompts)
        if plane is None:
            plane = getattr(prediction, "plane", None) if isinstance(prediction, Prediction) else None
        plane = self._plane if plane is None else src.check_plane(plane)
        return self.annotations.commit(mask, plane=plane, score=score, prompts=prompts)

    def undo(self) -> int | None:
        """Remove the last committed object; its id, or None when there is nothing to undo."""
        self._require_image()
        return self.annotations.undo()
