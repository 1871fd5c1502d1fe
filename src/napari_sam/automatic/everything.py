"""``segment_everything``: automatic instance segmentation of an image, a large image or one plane.

>>> from napari_sam.automatic import segment_everything
>>> labels = segment_everything(image)                 # (H, W) int32, 0 = background
>>> labels, info = segment_everything(image, mode="points", return_info=True)
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from napari_sam.automatic.box_mode import (
    SMALL_OBJECT_FRACTION,
    BoxModeParams,
    box_candidates,
    propose,
    select,
    smallest_object_area,
    stability_threshold,
)
from napari_sam.automatic.denoise import model_view
from napari_sam.automatic.filters import paint_labels
from napari_sam.automatic.merge import TileLabels, merge_tiles
from napari_sam.automatic.point_grid import PointGridParams, point_candidates
from napari_sam.automatic.score_bar import typical_boxes, typical_threshold
from napari_sam.automatic.session_windows import SessionWindows
from napari_sam.automatic.size_rank import size_weights, typical_area
from napari_sam.embeddings.embedder import WindowEmbeddings
from napari_sam.geometry.steps import grid_starts
from napari_sam.image.normalize import IntensityScaling, PreparedImage
from napari_sam.models import DEFAULT_MODEL
from napari_sam.models.loading import SamModel, load_model

MODES = ("points", "boxes")
DEFAULT_TILE = 2048  # images larger than this on a side are segmented in overlapping tiles
DEFAULT_OVERLAP = 256


def resolve_model(model: SamModel | str | None, device: str = "auto") -> SamModel:
    """A loaded model from a :class:`SamModel`, a registry name or checkpoint path, or None (default)."""
    if isinstance(model, SamModel):
        return model
    return load_model(model or DEFAULT_MODEL, device=device)


def resolve_mode(model: SamModel, mode: str | None) -> str:
    """``mode``, or the model's own ``spec.auto_mode`` when None; ``ValueError`` for anything else."""
    chosen = model.spec.auto_mode if mode is None else mode
    if chosen not in MODES:
        raise ValueError(
            f"mode must be 'points' (point grid) or 'boxes' (box proposals), or None for the "
            f"model's default ({model.spec.auto_mode!r}); got {mode!r}"
        )
    return chosen


def default_params(mode: str, params=None):
    """The parameter object of ``mode``: ``params`` itself, a dict of overrides, or the defaults."""
    cls = PointGridParams if mode == "points" else BoxModeParams
    if params is None:
        return cls()
    if isinstance(params, dict):
        try:
            return cls(**params)
        except TypeError as err:
            raise ValueError(
                f"unknown parameter for mode {mode!r}: {err}; valid: {sorted(cls().to_dict())}"
            ) from None
    if not isinstance(params, cls):
        raise ValueError(f"mode {mode!r} takes {cls.__name__}, got {type(params).__name__}")
    return params


def _as_prepared(image, channel_axis, scaling, stack_axis, plane) -> PreparedImage:
    if isinstance(image, PreparedImage):
        return image
    from napari_sam.image.planes import make_source

    source = make_source(image, stack_axis=stack_axis, channel_axis=channel_axis, scaling=scaling)
    if source.is_stack:
        if plane is None:
            raise ValueError(
                f"this is a stack of {source.num_planes} planes: pass plane=INDEX, or use "
                f"segment_stack() for all of them"
            )
        plane = source.check_plane(plane)
    else:
        plane = 0
    source.check_content(plane)  # an all-NaN or constant plane: BlankImageError, like such an image
    return source.plane(plane)


def _segment_prepared(
    model: SamModel,
    image: PreparedImage,
    mode: str,
    params,
    embeddings,
    progress: Callable[[int, int], None] | None,
    examples: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Labels, per-label scores (index 0 unused) and counters for one (tile of an) image; box mode with
    ``examples`` (an (H, W) label image of the tile) keeps only candidates whose embedding features are
    like the examples' (:func:`~napari_sam.automatic.examples.like_examples`).
    """
    noise: dict = {}
    if mode != "points":
        image, noise = model_view(image, params.denoise)
        if noise["denoised"]:  # any given embeddings are the original pixels'
            embeddings = None
    if embeddings is None:
        embeddings = WindowEmbeddings(model, image, capacity=64)
    if mode == "points":
        cands, info = point_candidates(model, image, embeddings, params, progress)
        order = np.argsort(-cands.scores, kind="stable")
        labels, kept = paint_labels(cands, image.shape, order=order, max_overlap=1.0)
    else:
        proposals = propose(image, params)
        small = proposals.reading.get("small_diameter")
        if small and params.min_area is None:  # a population of small objects: they may be this small
            least = smallest_object_area(SMALL_OBJECT_FRACTION * small)
            params = dataclasses.replace(params, min_area=min(least, params.max_area or least))
        if examples is not None and examples.any():
            from napari_sam.automatic.examples import like_examples, score_threshold, with_example_boxes

            asked = with_example_boxes(proposals, examples, params.box_pad)
            cands, info = box_candidates(model, image, embeddings, asked, params, progress, features=True)
            threshold = score_threshold(cands, len(proposals), params.pred_iou_thresh)
            params = dataclasses.replace(params, pred_iou_thresh=threshold)
            area = typical_area(cands.areas, cands.prompt >= len(proposals))  # the examples' answers
            cands, weight, similar = like_examples(cands, len(proposals), image_shape=image.shape)
            info.update(similar, score_threshold=round(threshold, 3), score_threshold_from="examples")
        else:
            cands, info = box_candidates(model, image, embeddings, proposals, params, progress)
            threshold = typical_threshold(cands, proposals.boxes, params.pred_iou_thresh)
            params = dataclasses.replace(params, pred_iou_thresh=threshold)
            info.update(score_threshold=round(threshold, 3), score_threshold_from="typical objects")
            passing = cands.scores >= threshold
            area = typical_area(cands.areas, typical_boxes(proposals.boxes)[cands.prompt] & passing)
            weight = None
        sizes = None
        if params.size_ranking and len(cands):
            sizes = size_weights(cands.areas, area)
            info["typical_area"] = round(area, 1)
        if params.edge_weight and proposals.image is not None and len(cands):
            from napari_sam.automatic.edges import edge_weights

            edges = edge_weights(cands, proposals.image, proposals.diameter)
            weight = edges if weight is None else weight * edges
        kept_c, order = select(
            cands,
            params,
            proposals.diameter,
            weight,
            proposals.image,
            proposals.reading.get("object_diameter"),
            sizes,
            image_shape=image.shape,
        )
        if kept_c.logits is not None and proposals.image is not None and len(kept_c):
            from napari_sam.automatic.extents import edge_derivatives, edge_extents

            kept_c.extents = edge_extents(kept_c, edge_derivatives(proposals.image))
        labels, kept = paint_labels(kept_c, image.shape, order=order, max_overlap=params.max_overlap)
        if kept_c.extents is not None:
            info["outlines_moved"] = sum(int(kept_c.extents[i].sum() > kept_c.masks[i].sum()) for i in kept)
        cands = kept_c
        typical = proposals.reading.get("object_diameter") or proposals.diameter
        info["stability_applied"] = round(stability_threshold(params, typical), 3) if typical else None
        info["stability_set"] = params.stability_thresh
        info.update(noise)
    scores = (
        np.concatenate([[0.0], cands.scores[kept]]).astype(np.float32)
        if len(kept)
        else np.zeros(1, np.float32)
    )
    info["objects"] = int(len(kept))
    info["encoded_windows"] = int(getattr(embeddings, "encoded_count", 0))
    return labels, scores, info


def _constant_plane_shape(image, channel_axis, stack_axis) -> tuple[int, int] | None:
    """(H, W) of an in-memory 2D image (gray, or channels last) whose finite pixels all have one value."""
    if not isinstance(image, np.ndarray) or stack_axis is not None or image.size == 0:
        return None
    if image.ndim == 2 or (image.ndim == 3 and channel_axis in (None, 2, -1) and image.shape[-1] <= 4):
        finite = image[np.isfinite(image)] if image.dtype.kind == "f" else image
        if finite.size and finite.min() == finite.max():
            return (int(image.shape[0]), int(image.shape[1]))
    return None


def _check_session(segmenter, image, model, embeddings, plane) -> int:
    """The plane of ``segmenter``'s image to segment; ``ValueError`` for arguments that contradict it."""
    if segmenter.source is None:
        raise ValueError("the segmenter holds no image yet: call segmenter.set_image(image) first")
    if embeddings is not None:
        raise ValueError("give embeddings= or segmenter=, not both: the segmenter brings its embeddings")
    if model is not None and model is not segmenter.model:
        raise ValueError("segmenter= segments with the segmenter's own model; leave model= out")
    h, w = segmenter.source.plane_shape
    dims = tuple(int(v) for v in np.shape(image)) if image is not None else ()
    if image is not None and not any(dims[i : i + 2] == (h, w) for i in range(len(dims) - 1)):
        raise ValueError(
            f"this image {dims} is not the segmenter's ({h} × {w} planes): pass the segmenter alone, "
            f"segment_everything(segmenter=seg), or set_image the new image first"
        )
    return segmenter.plane if plane is None else segmenter.plane_index(plane)


def tile_origins(shape: tuple[int, int], tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(r0, c0, r1, c1) of overlapping tiles covering an (H, W) image, row-major."""
    h, w = shape
    return [
        (r, c, min(r + tile, h), min(c + tile, w))
        for r in grid_starts(h, tile, overlap)
        for c in grid_starts(w, tile, overlap)
    ]


def segment_everything(
    image=None,
    *,
    model: SamModel | str | None = None,
    mode: str | None = None,
    params=None,
    channel_axis: int | None = None,
    stack_axis: int | None = None,
    plane: int | None = None,
    scaling: IntensityScaling | None = None,
    tile_size: int = DEFAULT_TILE,
    tile_overlap: int = DEFAULT_OVERLAP,
    device: str = "auto",
    embeddings=None,
    progress: Callable[[int, int], None] | None = None,
    return_info: bool = False,
    examples=None,
    segmenter=None,
):
    """Automatic instance segmentation: every object of a 2D image as one integer label.

    Parameters
    ----------
    image
        (H, W), (H, W, 3|4), multichannel with ``channel_axis``, or a stack with ``stack_axis`` and
        ``plane``; numpy, dask or zarr; or a :class:`~napari_sam.image.normalize.PreparedImage`.
    model
        A loaded model, a registry name or a checkpoint path (default ``lite_medsam``).
    mode
        ``"points"`` (grid of point prompts, SAM's generator), ``"boxes"`` (classical box proposals
        answered as box prompts), or None for the model's ``spec.auto_mode``.
    params
        :class:`~napari_sam.automatic.point_grid.PointGridParams` or
        :class:`~napari_sam.automatic.box_mode.BoxModeParams` for the mode, or a dict of overrides.
    scaling
        A recorded intensity scaling (e.g. the stack's) instead of this image's own.
    tile_size, tile_overlap
        Images larger than ``tile_size`` on a side are segmented in tiles overlapping by
        ``tile_overlap`` pixels (at least the largest object), and objects crossing seams are joined.
    embeddings
        For a single-tile image only: an object with ``get(window)`` to reuse (e.g. a cache).
    segmenter
        A :class:`~napari_sam.segmenter.Segmenter` with an image: segment its image (the plane in view,
        or ``plane``) with its model and its embeddings (memory and persistent tile store), so windows
        it has embedded are not encoded again and the ones encoded here stay in it. ``image`` may then
        be omitted.
    progress
        Called as ``progress(done, total)`` in units of tiles × windows.
    return_info
        Also return a dict of counters (proposals, windows encoded, objects, seconds, parameters).
    examples
        Box mode: an (H, W) label image of objects to find more of ("like these",
        :mod:`~napari_sam.automatic.examples`): their size, size range and polarity set the proposals,
        and they are kept under their own labels in the result (found objects overlapping them are
        dropped).

    Returns
    -------
    numpy.ndarray
        (H, W) int32 labels, 0 = background, objects 1..N; with ``return_info``, ``(labels, info)``.
    """
    t0 = time.perf_counter()
    if tile_overlap < 0 or tile_size <= tile_overlap:
        raise ValueError(f"tile_size ({tile_size}) must be larger than tile_overlap ({tile_overlap}) ≥ 0")
    if segmenter is not None:
        session_plane = _check_session(segmenter, image, model, embeddings, plane)
        image, net = segmenter.source.plane(session_plane), segmenter.model
    else:
        if image is None:
            raise ValueError("give an image to segment, or segmenter= a Segmenter holding one")
        net = resolve_model(model, device)
    chosen = resolve_mode(net, mode)
    p = default_params(chosen, params)
    flat = _constant_plane_shape(image, channel_axis, stack_axis)
    if flat is not None:  # nothing to segment: empty labels, and the info says why
        info = {"mode": chosen, "model": net.name, "objects": 0, "empty": "constant image: no objects"}
        info["seconds"] = time.perf_counter() - t0
        labels = np.zeros(flat, dtype=np.int32)
        return (labels, info) if return_info else labels
    prepared = _as_prepared(image, channel_axis, scaling, stack_axis, plane)
    shape = prepared.shape
    if examples is not None:
        from napari_sam.automatic.examples import check_examples, describe_examples, params_like

        if chosen != "boxes":
            raise ValueError("examples need box mode (mode='boxes'): the point grid does not use them")
        examples = check_examples(examples, shape)
        p = params_like(p, describe_examples(prepared, examples))
    tiles = tile_origins(shape, tile_size, tile_overlap)
    info: dict = {"mode": chosen, "model": net.name, "parameters": p.to_dict(), "tiles": len(tiles)}
    if segmenter is not None:
        embeddings = SessionWindows(segmenter.embeddings, session_plane)
    if len(tiles) == 1:
        labels, _, tile_info = _segment_prepared(net, prepared, chosen, p, embeddings, progress, examples)
        info.update(tile_info)
    else:
        parts: list[TileLabels] = []
        totals: dict[str, int] = {}
        first: dict = {}
        for k, (r0, c0, r1, c1) in enumerate(tiles):
            sub = PreparedImage(prepared.data[r0:r1, c0:c1], prepared.scaling, prepared.layout)
            step = None if progress is None else (lambda d, t, k=k: progress(k * t + d, len(tiles) * t))
            lent = None
            if segmenter is not None:  # the session's embeddings, windows shifted to this tile
                lent = SessionWindows(segmenter.embeddings, session_plane, (r0, c0))
            ex = None if examples is None else examples[r0:r1, c0:c1]
            lab, scores, tile_info = _segment_prepared(net, sub, chosen, p, lent, step, ex)
            parts.append(TileLabels((r0, c0), lab, scores))
            for key, v in tile_info.items():  # counts add up; the rest is the first tile's reading
                if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
                    totals[key] = totals.get(key, 0) + v
                elif key != "empty":  # whether the whole image is empty is decided below
                    first.setdefault(key, v)
        labels = merge_tiles(parts, shape)
        info.update(first)
        info.update(totals)
        info["objects"] = int(labels.max(initial=0))
    if examples is not None:
        from napari_sam.automatic.examples import keep_examples

        labels = keep_examples(labels, examples)
        info["examples"] = int(len(np.unique(examples)) - 1)
        info["objects"] = int(len(np.unique(labels)) - 1)
    if not info.get("objects") and not info.get("empty"):
        from napari_sam.automatic.summary import why_empty

        info["empty"] = "no objects: " + why_empty(info)
    info["seconds"] = time.perf_counter() - t0
    return (labels, info) if return_info else labels
