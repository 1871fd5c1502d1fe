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


def _frame(cands: Candidates, ids: list[int]) -> tuple[int, int, int, int]:
    """The (row0, col0, row1, col1) box holding the crops ``ids``."""
    r0 = min(int(cands.offsets[i][0]) for i in ids)
    c0 = min(int(cands.offsets[i][1]) for i in ids)
    r1 = max(int(cands.offsets[i][0]) + cands.masks[i].shape[0] for i in ids)
    c1 = max(int(cands.offsets[i][1]) + cands.masks[i].shape[1] for i in ids)
    return r0, c0, r1, c1


def _in_frame(cands: Candidates, i: int, frame: tuple[int, int, int, int]) -> np.ndarray:
    r0, c0, r1, c1 = frame
    out = np.zeros((r1 - r0, c1 - c0), dtype=bool)
    (r, c), m = cands.offsets[i], cands.masks[i]
    out[r - r0 : r - r0 + m.shape[0], c - c0 : c - c0 + m.shape[1]] = m
    return out


def seam_valley(
    cands: Candidates, whole: int, a: int, b: int, smooth: np.ndarray, background: float, width: int = 2
) -> float | None:
    """How much darker the seam between parts ``a`` and ``b`` of mask ``whole`` is than the parts.

    The seam is the pixels of ``whole`` within ``width`` pixels of both parts. Returns ``(parts - seam) /
    (parts - background)`` of the mean intensities of ``smooth`` (objects bright): about 0 when the two
    parts are halves of one object, clearly positive when a darker line separates two touching objects;
    None when the parts do not come near each other or are no brighter than the background.
    """
    from scipy import ndimage as ndi

    frame = _frame(cands, [whole, a, b])
    r0, c0, r1, c1 = frame
    pad = width + 1
    fr = (r0 - pad, c0 - pad, r1 + pad, c1 + pad)
    h, w = smooth.shape
    patch = np.full((fr[2] - fr[0], fr[3] - fr[1]), np.nan, dtype=np.float64)
    sr0, sc0, sr1, sc1 = max(fr[0], 0), max(fr[1], 0), min(fr[2], h), min(fr[3], w)
    patch[sr0 - fr[0] : sr1 - fr[0], sc0 - fr[1] : sc1 - fr[1]] = smooth[sr0:sr1, sc0:sc1]
    m_whole, m_a, m_b = (_in_frame(cands, i, fr) for i in (whole, a, b))
    seam = (
        m_whole
        & ndi.binary_dilation(m_a, iterations=width)
        & ndi.binary_dilation(m_b, iterations=width)
        & np.isfinite(patch)
    )
    # the parts' pixels flanking the seam (their dim outer edges would bias a mean over whole parts)
    near = ndi.binary_dilation(seam, iterations=width + 2)
    parts = (m_a | m_b) & near & ~seam & np.isfinite(patch)
    if not seam.any() or not parts.any():
        return None
    inside = float(patch[parts].mean())
    if inside <= background:
        return None
    return (inside - float(patch[seam].mean())) / (inside - background)


def cluster_masks(cands: Candidates, **options) -> np.ndarray:
    """(N,) bool: masks that hold two smaller candidates which barely overlap each other.

    With ``smooth`` (the objects-bright image, smoothed), a mask up to ``max_whole_area`` pixels is a
    cluster only where a darker seam separates two such parts (:func:`seam_valley` at least
    ``min_valley``): two halves of one noisy nucleus are not two nuclei. Without it, and for larger
    masks, any two such parts make a cluster. ``options``: those of :func:`wholes_and_clusters`.
    """
    return wholes_and_clusters(cands, **options)[1]


def wholes_and_clusters(
    cands: Candidates,
    *,
    contain: float = 0.7,
    max_part: float = 0.75,
    disjoint: float = 0.2,
    smooth: np.ndarray | None = None,
    background: float = 0.0,
    min_valley: float = 0.04,
    max_whole_area: float = np.inf,
) -> tuple[np.ndarray, np.ndarray]:
    """(fragments, clusters): two (N,) bool arrays (see :func:`cluster_masks`).

    ``clusters`` marks masks over two objects. ``fragments`` marks the parts of masks that hold two
    separate parts without a seam between them (one object cut in two): the whole should win over them.

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
    smooth, background
        (H, W) float image in the candidates' frame (objects bright) and its background level.
    min_valley
        Smallest seam valley (a fraction of the contrast beside the seam) that makes two parts two
        objects.
    max_whole_area
        Masks larger than this (pixels; e.g. 1.4 typical objects) are clusters whatever their seam.
    """
    if not (0 < contain <= 1 and 0 < max_part < 1 and 0 <= disjoint < 1):
        raise ValueError(
            f"need 0 < contain ≤ 1, 0 < max_part < 1, 0 ≤ disjoint < 1; got {contain}, {max_part}, {disjoint}"
        )
    areas = cands.areas.astype(np.float64)
    inter = pairwise_intersections(cands)
    clusters = np.zeros(len(cands), dtype=bool)
    fragments = np.zeros(len(cands), dtype=bool)
    for i in range(len(cands)):
        parts = np.flatnonzero((inter[i] >= contain * areas) & (areas <= max_part * areas[i]) & (areas > 0))
        if len(parts) < 2:
            continue
        sub = inter[np.ix_(parts, parts)]
        small = np.minimum(areas[parts][:, None], areas[parts][None, :])
        pairs = np.argwhere(np.triu(sub < disjoint * small, 1))
        if not len(pairs):
            continue
        if smooth is None or areas[i] > max_whole_area:
            clusters[i] = True
            continue
        halves = []
        for ja, jb in pairs:
            a, b = int(parts[ja]), int(parts[jb])
            valley = seam_valley(cands, i, a, b, smooth, background)
            if valley is None or valley >= min_valley:
                clusters[i] = True
                break
            halves += [a, b]
        if not clusters[i]:
            fragments[halves] = True
    fragments &= ~clusters
    return fragments, clusters
