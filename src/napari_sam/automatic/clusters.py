"""Masks that span several objects: a box around two touching nuclei often gets one mask over both,
scored as confidently as the single objects. Such a mask contains two (or more) smaller candidates
that barely overlap each other; dropping it lets the single objects through.

Masks are :class:`~napari_sam.automatic.filters.Candidates` crops.
"""

from __future__ import annotations

import numpy as np

from napari_sam.automatic.filters import Candidates, box_iou


def pairwise_intersections(cands: Candidates) -> np.ndarray:
    """(N, N) pixel counts of the intersections of the candidate masks (0 on the diagonal)."""
    n = len(cands)
    inter = np.zeros((n, n), dtype=np.float64)
    if n == 0:
        return inter
    boxes = cands.boxes()
    valid = ~np.isnan(boxes[:, 0])
    touching = np.zeros((n, n), dtype=bool)
    if valid.any():
        idx = np.flatnonzero(valid)
        touching[np.ix_(idx, idx)] = box_iou(boxes[idx], boxes[idx]) > 0
    for i, j in zip(*np.nonzero(np.triu(touching, 1))):
        (r1, c1), (r2, c2) = cands.offsets[i], cands.offsets[j]
        m1, m2 = cands.masks[i], cands.masks[j]
        r0, c0 = max(r1, r2), max(c1, c2)
        re, ce = min(r1 + m1.shape[0], r2 + m2.shape[0]), min(c1 + m1.shape[1], c2 + m2.shape[1])
        if re <= r0 or ce <= c0:
            continue
        v = int((m1[r0 - r1 : re - r1, c0 - c1 : ce - c1] & m2[r0 - r2 : re - r2, c0 - c2 : ce - c2]).sum())
        inter[i, j] = inter[j, i] = v
    return inter


def cluster_masks(
    cands: Candidates, *, contain: float = 0.7, max_part: float = 0.75, disjoint: float = 0.2
) -> np.ndarray:
    """(N,) bool: masks that hold two smaller candidates which barely overlap each other.

    Parameters
    ----------
    cands
        Candidate masks (already filtered by quality).
    contain
        A part lies inside a mask when at least this fraction of the part's area does. 0.7 rather than
        0.8: a mask over two touching objects is often a little tighter than each object's own mask
        (2× down-scaled nuclei F1 0.620 → 0.651; the other variants unchanged).
    max_part
        Parts are at most this fraction of the mask's area.
    disjoint
        Two parts are distinct objects when their intersection is below this fraction of the smaller.
    """
    if not (0 < contain <= 1 and 0 < max_part < 1 and 0 <= disjoint < 1):
        raise ValueError(
            f"need 0 < contain ≤ 1, 0 < max_part < 1, 0 ≤ disjoint < 1; got {contain}, {max_part}, {disjoint}"
        )
    areas = cands.areas.astype(np.float64)
    inter = pairwise_intersections(cands)
    out = np.zeros(len(cands), dtype=bool)
    for i in range(len(cands)):
        parts = np.flatnonzero((inter[i] >= contain * areas) & (areas <= max_part * areas[i]) & (areas > 0))
        if len(parts) < 2:
            continue
        sub = inter[np.ix_(parts, parts)]
        small = np.minimum(areas[parts][:, None], areas[parts][None, :])
        separate = np.triu(sub < disjoint * small, 1)
        out[i] = bool(separate.any())
    return out
