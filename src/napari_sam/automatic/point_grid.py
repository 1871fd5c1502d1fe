"""Point-grid mode: SAM's "segment everything" for point-trained models.

A regular grid of single positive points over the image (and optionally over overlapping crops of it,
each encoded as its own window) is decoded in batches with three candidate masks per point; masks are
kept when their predicted IoU and stability pass the thresholds, then de-duplicated by box
non-maximum suppression, cleaned of small islands and holes, and painted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from napari_sam.automatic.decode import iter_decode_window
from napari_sam.automatic.filters import Candidates, box_nms, remove_small_regions, stability_score
from napari_sam.geometry.steps import spread_starts
from napari_sam.geometry.windows import Window, whole_image_window
from napari_sam.image.normalize import PreparedImage
from napari_sam.models.device import decode_chunk
from napari_sam.models.loading import SamModel


@dataclass(frozen=True)
class PointGridParams:
    """Settings of point-grid mode (the defaults are those of SAM's automatic mask generator).

    Attributes
    ----------
    points_per_side
        The grid has ``points_per_side``² points per crop (scaled down by ``2**layer`` in crop layers).
    points_per_batch
        Points per decoder call (on a CPU at most :data:`napari_sam.models.device.CPU_DECODE_CHUNK`, which is
        faster there).
    pred_iou_thresh, stability_thresh, stability_offset
        Filters on the predicted IoU and the stability score.
    box_nms_thresh
        Box IoU above which the lower-scoring of two masks is dropped.
    min_region_area
        Islands and holes smaller than this (pixels) are removed from each mask (0: keep all).
    crop_n_layers
        Extra layers of crops: layer i splits the image into 2**i × 2**i overlapping square windows.
    crop_overlap_ratio
        Overlap of neighbouring crops, as a fraction of the image's longest side.
    """

    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_thresh: float = 0.95
    stability_offset: float = 1.0
    box_nms_thresh: float = 0.7
    min_region_area: int = 0
    crop_n_layers: int = 0
    crop_overlap_ratio: float = 512 / 1500

    def to_dict(self) -> dict:
        return asdict(self)


def crop_windows(
    image_shape: tuple[int, int], n_layers: int, overlap_ratio: float
) -> list[tuple[int, Window]]:
    """(layer, window) of every crop: the whole image, then 2**i × 2**i overlapping squares per layer i."""
    h, w = image_shape
    out = [(0, whole_image_window(image_shape))]
    longest = max(h, w)
    for layer in range(1, n_layers + 1):
        n = 2**layer
        overlap = int(overlap_ratio * longest * (2 / n))
        side = int(math.ceil((longest + overlap * (n - 1)) / n))
        for r0 in spread_starts(h, side, n):
            for c0 in spread_starts(w, side, n):
                out.append((layer, Window(int(r0), int(c0), side)))
    return out


def grid_points(window: Window, image_shape: tuple[int, int], n: int) -> np.ndarray:
    """(n², 2) (row, col) points at the centres of an n × n grid over the window's part of the image."""
    h = min(window.row0 + window.size, image_shape[0]) - window.row0
    w = min(window.col0 + window.size, image_shape[1]) - window.col0
    rows = window.row0 + (np.arange(n) + 0.5) * h / n - 0.5
    cols = window.col0 + (np.arange(n) + 0.5) * w / n - 0.5
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    return np.stack([rr.ravel(), cc.ravel()], axis=1)


def _tight(mask: np.ndarray, offset: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]] | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return (
        mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].copy(),
        (offset[0] + int(rows[0]), offset[1] + int(cols[0])),
    )


def point_candidates(
    model: SamModel,
    image: PreparedImage,
    embeddings,
    params: PointGridParams,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Candidates, dict]:
    """Masks of a point grid that pass the filters, de-duplicated within and across crops.

    ``embeddings`` is anything with ``get(window) -> (1, C, h, w)`` tensor. Masks are stored tight to
    their bounding box, so memory grows with the kept masks only.
    """
    shape = image.shape
    crops = crop_windows(shape, params.crop_n_layers, params.crop_overlap_ratio)
    per_crop: list[Candidates] = []
    layers: list[int] = []
    total = sum(max(1, params.points_per_side // 2**layer) ** 2 for layer, _ in crops)
    done = decoded = 0
    for layer, window in crops:
        n = max(1, params.points_per_side // 2**layer)
        points = grid_points(window, shape, n)
        emb = embeddings.get(window)
        masks, offsets, scores, stab, prompt = [], [], [], [], []
        per_pass = decode_chunk(model.device, params.points_per_batch)
        for b, batch in enumerate(
            iter_decode_window(
                model, emb, window, shape, points_rc=points, multimask=True, batch_size=per_pass
            )
        ):
            for j, crop in enumerate(batch):
                decoded += len(crop.scores)
                st = stability_score(crop.logits, 0.0, params.stability_offset)
                for m in range(len(crop.scores)):
                    if crop.scores[m] < params.pred_iou_thresh or st[m] < params.stability_thresh:
                        continue
                    tight = _tight(crop.logits[m] > 0, crop.offset)
                    if tight is None:
                        continue
                    masks.append(tight[0])
                    offsets.append(tight[1])
                    scores.append(float(crop.scores[m]))
                    stab.append(float(st[m]))
                    prompt.append(b * per_pass + j)
            done += len(batch)
            if progress is not None:
                progress(done, total)
        cands = Candidates(
            masks,
            np.array(offsets, np.int64).reshape(-1, 2),
            np.array(scores, np.float32),
            np.array(stab, np.float32),
            np.array(prompt, np.int64),
        )
        if len(cands):
            cands = cands.subset(box_nms(cands.boxes(), cands.scores, params.box_nms_thresh))
        per_crop.append(cands)
        layers.append(layer)
    # across crops: prefer masks from smaller crops (they saw the object at a higher resolution)
    all_c = Candidates.concat(per_crop)
    if len(crops) > 1 and len(all_c):
        layer_of = np.concatenate([np.full(len(c), layer) for c, layer in zip(per_crop, layers)])
        all_c = all_c.subset(box_nms(all_c.boxes(), layer_of.astype(np.float64), params.box_nms_thresh))
    if params.min_region_area > 0 and len(all_c):
        cleaned = []
        for m in all_c.masks:
            m = remove_small_regions(m, params.min_region_area, "holes")
            cleaned.append(remove_small_regions(m, params.min_region_area, "islands"))
        all_c.masks = cleaned
        ok = np.flatnonzero(all_c.areas > 0)
        all_c = all_c.subset(ok)
        all_c = all_c.subset(box_nms(all_c.boxes(), all_c.scores, params.box_nms_thresh))
    return all_c, {"crops": len(crops), "points": total, "decoded": decoded, "kept": len(all_c)}
