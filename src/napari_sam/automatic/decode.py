"""Batched decoding of many prompts on one window embedding, with masks cut to a region per prompt.

Decoding goes through the model's own mask decoder (:meth:`~napari_sam.models.sam.SamNetwork.decode`)
in its region-of-interest mode (:class:`~napari_sam.models.mask_decoder.TokenRegions`): SAM's upscaler
is local, so the decoder upsamples only the tokens around each prompt's crop region (exactly the same
logits there, a fraction of the work for small objects). This module chooses those regions and samples
the logits at the image's pixels: bilinearly at their centres, or averaged over their footprint where a
pixel spans several logits (a zoomed window).

Coordinates are image pixels (row, col); boxes are (min_row, min_col, max_row, max_col), max inclusive.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from napari_sam.geometry.coords import boxes_to_model_xyxy, image_to_model_xy
from napari_sam.geometry.windows import Window
from napari_sam.models.loading import SamModel
from napari_sam.models.mask_decoder import TokenRegions


@dataclass
class MaskCrop:
    """Candidate masks of one prompt over a crop of the image.

    Attributes
    ----------
    logits
        (M, h, w) float32 logits sampled at the pixel centres of rows [row, row + h) and columns
        [col, col + w) of the image (M = 1, or 3 for multimask output).
    offset
        (row, col) of the crop's top-left pixel in the image.
    scores
        (M,) float32 predicted IoU.
    """

    logits: np.ndarray
    offset: tuple[int, int]
    scores: np.ndarray


def crop_regions(
    boxes_rc: np.ndarray | None,
    window: Window,
    image_shape: tuple[int, int],
    margin: float,
    min_margin: int,
    count: int,
) -> np.ndarray:
    """(K, 4) int crop regions [r0, r1) × [c0, c1) per prompt: the box grown by ``margin`` × its extent
    (at least ``min_margin`` pixels), clipped to the window's part of the image; the whole of it without
    boxes.
    """
    h, w = image_shape
    wr0, wc0 = window.row0, window.col0
    wr1, wc1 = min(window.row0 + window.size, h), min(window.col0 + window.size, w)
    if boxes_rc is None:
        return np.tile(np.array([wr0, wr1, wc0, wc1], dtype=np.int64), (count, 1))
    b = np.asarray(boxes_rc, dtype=np.float64)
    er = np.maximum(margin * (b[:, 2] - b[:, 0] + 1), min_margin)
    ec = np.maximum(margin * (b[:, 3] - b[:, 1] + 1), min_margin)
    out = np.stack(
        [
            np.floor(b[:, 0] - er),
            np.ceil(b[:, 2] + er) + 1,
            np.floor(b[:, 1] - ec),
            np.ceil(b[:, 3] + ec) + 1,
        ],
        axis=1,
    ).astype(np.int64)
    out[:, 0] = np.clip(out[:, 0], wr0, wr1 - 1)
    out[:, 1] = np.clip(out[:, 1], out[:, 0] + 1, wr1)
    out[:, 2] = np.clip(out[:, 2], wc0, wc1 - 1)
    out[:, 3] = np.clip(out[:, 3], out[:, 2] + 1, wc1)
    return out


def _interp_matrix(pos: np.ndarray, n: int, footprint: float = 1.0) -> torch.Tensor:
    """(len(pos), n) weights sampling a grid of n cells at fractional cell-centre positions ``pos``.

    Bilinear at each position; where an image pixel covers more than one cell (``footprint`` > 1, the
    pixel's side in cells, as in a zoomed window), the mean of bilinear samples spread evenly over the
    pixel, two per cell: the pixel gets its footprint's mean logit, not the one at its centre.
    """
    pos = np.asarray(pos, dtype=np.float64)
    k = max(1, math.ceil(2 * footprint)) if footprint > 1.0 else 1
    offsets = ((np.arange(k) + 0.5) / k - 0.5) * (footprint if k > 1 else 0.0)
    m = np.zeros((len(pos), n), dtype=np.float32)
    rows = np.arange(len(pos))
    for off in offsets:
        at = np.clip(pos + off, 0.0, n - 1.0)
        lo = np.floor(at).astype(np.int64)
        hi = np.minimum(lo + 1, n - 1)
        frac = (at - lo).astype(np.float32)
        np.add.at(m, (rows, lo), (1.0 - frac) / k)
        np.add.at(m, (rows, hi), frac / k)
    return torch.from_numpy(m)


def decode_window(
    model: SamModel, embedding: torch.Tensor, window: Window, image_shape: tuple[int, int], **kwargs
) -> list[MaskCrop]:
    """All of :func:`iter_decode_window`'s batches as one list (one :class:`MaskCrop` per prompt)."""
    return [
        crop
        for batch in iter_decode_window(model, embedding, window, image_shape, **kwargs)
        for crop in batch
    ]


def iter_decode_window(
    model: SamModel,
    embedding: torch.Tensor,
    window: Window,
    image_shape: tuple[int, int],
    *,
    boxes_rc: np.ndarray | None = None,
    points_rc: np.ndarray | None = None,
    multimask: bool = False,
    margin: float = 0.5,
    min_margin: int = 6,
    batch_size: int = 32,
    context: int | None = None,
) -> Iterator[list[MaskCrop]]:
    """Decode K prompts that share ``window``, ``batch_size`` per decoder call, yielding each batch.

    Parameters
    ----------
    model
        The loaded model.
    embedding
        (1, C, h, w) embedding of ``window``.
    window
        The window (image pixels) the embedding was computed from.
    image_shape
        (H, W) of the image.
    boxes_rc
        (K, 4) boxes, one object each; or None.
    points_rc
        (K, 2) single positive points, one object each (with ``boxes_rc`` None).
    multimask
        Three candidates per prompt instead of one.
    margin, min_margin
        Masks are kept over the box grown by ``margin`` × its extent (at least ``min_margin`` pixels) on
        every side; point prompts keep the whole window.
    batch_size
        Prompts per decoder call.
    context
        None: the decoder's transformer sees the whole window (exact). An int: it sees only the tokens
        of each prompt's crop region grown by this many tokens on every side (an approximation that
        costs a fraction of the work for small objects: attention far from the object is negligible).

    Yields
    ------
    list of MaskCrop
        One per prompt of the batch, in prompt order.
    """
    if (boxes_rc is None) == (points_rc is None):
        raise ValueError("give either boxes_rc or points_rc")
    prompts = np.asarray(boxes_rc if boxes_rc is not None else points_rc, dtype=np.float64)
    k = len(prompts)
    if k == 0:
        return
    dev = model.device
    s = model.input_size
    scale = window.scale(s)
    origin = (window.row0, window.col0)
    grid_shape = tuple(embedding.shape[-2:])
    regions = crop_regions(boxes_rc, window, image_shape, margin, min_margin, k)
    for start in range(0, k, batch_size):
        sl = slice(start, min(start + batch_size, k))
        tokens = token_regions(regions[sl], origin, scale, s, grid_shape, context)
        points = boxes = None
        if boxes_rc is not None:
            xyxy = boxes_to_model_xyxy(prompts[sl], origin, scale)
            boxes = torch.as_tensor(xyxy, dtype=torch.float32, device=dev)
        else:
            xy = torch.as_tensor(
                image_to_model_xy(prompts[sl], origin, scale), dtype=torch.float32, device=dev
            )
            points = (xy[:, None], torch.ones(xy.shape[0], 1, dtype=torch.int64, device=dev))
        logits, iou = model.decode(embedding, points, boxes, None, multimask, regions=tokens)
        yield _sample_crops(
            logits.float().cpu(), iou.float().cpu().numpy(), tokens, regions[sl], origin, scale, s, grid_shape
        )


def token_regions(
    regions: np.ndarray,
    origin: tuple[int, int],
    scale: float,
    input_size: int,
    grid_shape: tuple[int, int],
    context: int | None = None,
) -> TokenRegions:
    """The decoder's region-of-interest blocks: per prompt, the token rows and columns under its crop
    region (one token of padding for the bilinear neighbours), as common-size blocks inside the grid.

    ``regions`` are (K, 4) [r0, r1) × [c0, c1) image pixels of a window with top-left ``origin`` and
    ``scale`` model pixels per image pixel; ``grid_shape`` is the embedding's (h, w) token grid.
    """
    he, we = grid_shape
    tok = input_size / he  # model pixels per token
    rows = [
        image_to_model_xy(np.array([[r0, 0], [r1 - 1, 0]], float), origin, scale)[:, 1]
        for r0, r1, _, _ in regions
    ]
    cols = [
        image_to_model_xy(np.array([[0, c0], [0, c1 - 1]], float), origin, scale)[:, 0]
        for _, _, c0, c1 in regions
    ]
    t_rows = [(max(0, math.floor(y[0] / tok) - 1), min(he, math.ceil(y[1] / tok) + 2)) for y in rows]
    t_cols = [(max(0, math.floor(x[0] / tok) - 1), min(we, math.ceil(x[1] / tok) + 2)) for x in cols]
    th = max(t1 - t0 for t0, t1 in t_rows)
    tw = max(t1 - t0 for t0, t1 in t_cols)
    return TokenRegions(
        tuple(min(t0, he - th) for t0, _ in t_rows),
        tuple(min(t0, we - tw) for t0, _ in t_cols),
        th,
        tw,
        context,
    )


def _sample_crops(
    logits: torch.Tensor,
    iou: np.ndarray,
    tokens: TokenRegions,
    regions: np.ndarray,
    origin: tuple[int, int],
    scale: float,
    input_size: int,
    grid_shape: tuple[int, int],
) -> list[MaskCrop]:
    """Each prompt's block of logits (B, M, 4·th, 4·tw) sampled at the pixels of its crop region: bilinearly
    at their centres, or over their footprint where a pixel spans several logits (:func:`_interp_matrix`).
    """
    hu, wu = logits.shape[-2:]
    up = hu // tokens.height  # the upscaler's factor: 4 logits per token
    px_per_logit = input_size / (up * grid_shape[0])
    footprint = scale / px_per_logit  # an image pixel's side, in logit cells
    result = []
    for i, (r0, r1, c0, c1) in enumerate(regions):
        # image pixel centres → logit-cell coordinates within this prompt's block
        ys = image_to_model_xy(np.stack([np.arange(r0, r1), np.zeros(r1 - r0)], 1), origin, scale)[:, 1]
        xs = image_to_model_xy(np.stack([np.zeros(c1 - c0), np.arange(c0, c1)], 1), origin, scale)[:, 0]
        ly = (ys + 0.5) / px_per_logit - 0.5 - up * tokens.rows[i]
        lx = (xs + 0.5) / px_per_logit - 0.5 - up * tokens.cols[i]
        sampled = (
            _interp_matrix(ly, hu, footprint) @ logits[i] @ _interp_matrix(lx, wu, footprint).T
        )  # (M, h, w)
        result.append(MaskCrop(sampled.numpy(), (int(r0), int(c0)), iou[i].astype(np.float32)))
    return result
