"""Filtering candidate masks: stability, box NMS, small regions and holes, and overlap resolution.

Masks are held as crops: a (h, w) bool array placed at an (row, col) offset of the image, so thousands
of candidates on a large image never take full-image memory. Boxes are (min_row, min_col, max_row,
max_col), max inclusive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from napari_sam.prediction.scores import stability_score  # noqa: F401  (re-exported: the filters' users import it here)


@dataclass
class Candidates:
    """Candidate object masks.

    Attributes
    ----------
    masks
        List of (h_i, w_i) bool crops.
    offsets
        (N, 2) int64 (row, col) of each crop's top-left pixel.
    scores
        (N,) float32 predicted IoU.
    stability
        (N,) float32 stability score.
    prompt
        (N,) int64 index of the prompt (proposal box or grid point) each mask answers.
    features
        (N, C) float32 embedding features of the masks (:mod:`~napari_sam.automatic.prototype`), or
        None when not computed.
    logits
        None, or the model's (h_i, w_i) float16 logits behind each mask (same crop; the mask is
        ``logits > 0`` cleaned), for :mod:`~napari_sam.automatic.extents`.
    extents
        None, or one (h_i, w_i) bool crop per mask (same offsets) holding it: how far the object may
        grow into pixels no other object claims when painted (:func:`paint_labels`).
    """

    masks: list[np.ndarray] = field(default_factory=list)
    offsets: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    stability: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    prompt: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    features: np.ndarray | None = None
    logits: list[np.ndarray] | None = None
    extents: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.masks)

    @property
    def areas(self) -> np.ndarray:
        return np.array([int(m.sum()) for m in self.masks], dtype=np.int64)

    def touches_edge(self, image_shape: tuple[int, int]) -> np.ndarray:
        """(N,) bool: whether each mask reaches the edge of an image of ``image_shape`` (H, W): the
        visible part of an object the edge may cut.
        """
        h, w = image_shape
        out = np.zeros(len(self), dtype=bool)
        for i, (m, (r, c)) in enumerate(zip(self.masks, self.offsets)):
            if not m.size:
                continue
            out[i] = bool(
                (r <= 0 and m[0].any())
                or (c <= 0 and m[:, 0].any())
                or (r + m.shape[0] >= h and m[-1].any())
                or (c + m.shape[1] >= w and m[:, -1].any())
            )
        return out

    def boxes(self) -> np.ndarray:
        """(N, 4) float64 image-frame bounding boxes of the masks (NaN for an empty mask)."""
        out = np.full((len(self), 4), np.nan)
        for i, (m, (r, c)) in enumerate(zip(self.masks, self.offsets)):
            rows = np.flatnonzero(m.any(axis=1))
            if rows.size:
                cols = np.flatnonzero(m.any(axis=0))
                out[i] = (r + rows[0], c + cols[0], r + rows[-1], c + cols[-1])
        return out

    def subset(self, index) -> Candidates:
        idx = np.asarray(index, dtype=np.int64).ravel()
        return Candidates(
            [self.masks[i] for i in idx],
            self.offsets[idx],
            self.scores[idx],
            self.stability[idx],
            self.prompt[idx],
            None if self.features is None else self.features[idx],
            _pick(self.logits, idx),
            _pick(self.extents, idx),
        )

    @staticmethod
    def concat(parts: list[Candidates]) -> Candidates:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Candidates()
        return Candidates(
            [m for p in parts for m in p.masks],
            np.concatenate([p.offsets for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.stability for p in parts]),
            np.concatenate([p.prompt for p in parts]),
            None if any(p.features is None for p in parts) else np.concatenate([p.features for p in parts]),
            _join([p.logits for p in parts]),
            _join([p.extents for p in parts]),
        )


def _pick(crops: list[np.ndarray] | None, idx: np.ndarray) -> list[np.ndarray] | None:
    return None if crops is None else [crops[i] for i in idx]


def _join(lists: list[list[np.ndarray] | None]) -> list[np.ndarray] | None:
    return None if any(x is None for x in lists) else [c for x in lists for c in x]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of inclusive pixel boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    r0 = np.maximum(a[:, None, 0], b[None, :, 0])
    c0 = np.maximum(a[:, None, 1], b[None, :, 1])
    r1 = np.minimum(a[:, None, 2], b[None, :, 2])
    c1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(r1 - r0 + 1, 0, None) * np.clip(c1 - c0 + 1, 0, None)
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def box_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.7) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, highest score first."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    keep: list[int] = []
    suppressed = np.zeros(len(boxes), dtype=bool)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        suppressed |= box_iou(boxes[i : i + 1], boxes)[0] > iou_threshold
    return np.array(keep, dtype=np.int64)


def remove_small_regions(mask: np.ndarray, min_area: int, mode: str) -> np.ndarray:
    """Drop islands (``mode="islands"``) or fill holes (``mode="holes"``) smaller than ``min_area``."""
    if mode not in ("islands", "holes"):
        raise ValueError(f"mode must be 'islands' or 'holes', got {mode!r}")
    target = mask if mode == "islands" else ~mask
    lab, n = ndi.label(target)
    if n == 0 or min_area <= 0:
        return mask
    sizes = np.bincount(lab.ravel())
    small = sizes < min_area
    small[0] = False
    if mode == "holes":  # a "hole" touching the crop border is background, not a hole
        border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
        small[border] = False
        return mask | small[lab]
    return mask & ~small[lab]


def clean_mask(
    mask: np.ndarray, min_area: int = 0, fill_holes: bool = True, largest_only: bool = True
) -> np.ndarray:
    """One solid object: holes filled, the largest connected piece kept (or pieces ≥ ``min_area``)."""
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return m
    if fill_holes:
        m = ndi.binary_fill_holes(m)
    lab, n = ndi.label(m)
    if n > 1:
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        m = lab == int(np.argmax(sizes)) if largest_only else remove_small_regions(m, min_area, "islands")
    return m


def paint_labels(
    cands: Candidates,
    shape: tuple[int, int],
    *,
    order: np.ndarray | None = None,
    max_overlap: float = 0.3,
    min_area: int = 1,
    dtype=np.int32,
) -> tuple[np.ndarray, np.ndarray]:
    """Resolve overlaps and paint an (H, W) label image.

    Candidates are taken in ``order`` (default: descending score); one whose area is already claimed by
    more than ``max_overlap`` of itself is dropped, otherwise it gets the next label on its unclaimed
    pixels (if at least ``min_area`` of them remain). With ``cands.extents``, every painted object then
    grows, in the same order, into the pixels of its extent that are still background and touch it
    (:func:`grow_into_extents`).

    Returns
    -------
    labels
        (H, W) ``dtype`` label image, 0 = background, objects 1..N.
    kept
        (N,) int64 index of the candidate behind each label.
    """
    labels = np.zeros(shape, dtype=dtype)
    if order is None:
        order = np.argsort(-cands.scores, kind="stable")
    kept: list[int] = []
    for i in order:
        m = cands.masks[i]
        area = int(m.sum())
        if area < min_area:
            continue
        r, c = (int(v) for v in cands.offsets[i])
        region = labels[r : r + m.shape[0], c : c + m.shape[1]]
        free = m & (region == 0)
        n_free = int(free.sum())
        if area - n_free > max_overlap * area or n_free < min_area:
            continue
        region[free] = len(kept) + 1
        kept.append(int(i))
    kept_arr = np.array(kept, dtype=np.int64)
    if cands.extents is not None and len(kept_arr):
        grow_into_extents(labels, cands, kept_arr)
    return labels, kept_arr


def grow_into_extents(labels: np.ndarray, cands: Candidates, kept: np.ndarray) -> None:
    """Grow painted objects into their extents, in place.

    Object ``k + 1`` of ``labels`` (H, W) is candidate ``kept[k]``. In that order, each object takes the
    background pixels of its extent (``cands.extents``, a superset of its mask) that are connected to
    the object through such pixels; pixels another object holds stay with it.
    """
    for k, i in enumerate(kept):
        ext = cands.extents[i]
        r, c = (int(v) for v in cands.offsets[i])
        region = labels[r : r + ext.shape[0], c : c + ext.shape[1]]
        own = region == k + 1
        grow = ext[: region.shape[0], : region.shape[1]] & ((region == 0) | own)
        if not own.any() or not (grow & ~own).any():
            continue
        parts, _ = ndi.label(grow)
        touching = np.unique(parts[own])
        region[np.isin(parts, touching[touching > 0]) & (region == 0)] = k + 1


def smallest_int_dtype(count: int) -> np.dtype:
    """The smallest unsigned integer type that holds labels 0..count."""
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if count <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise ValueError(f"{count} labels do not fit in 64 bits")
