"""Masks that span several objects: a box around two touching nuclei often gets one mask over both,
scored as confidently as the single objects. Such a mask contains two (or more) smaller candidates
that barely overlap each other; dropping it lets the single objects through.

Masks are :class:`~napari_sam.automatic.filters.Candidates` crops.
"""

from __future__ import annotations

from typing import NamedTuple

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

    The seam is the pixels of ``whole`` within ``width`` pixels of both parts; where the parts do not
    come that near each other, the pixels of ``whole`` between them (:func:`_corridor`). Returns
    ``(parts - seam) / (parts - background)`` of the mean intensities of ``smooth`` (objects bright):
    about 0 when the two parts are pieces of one object, clearly positive when a darker line or gap
    separates two objects; None when ``whole`` has nothing beside the parts or they are no brighter than
    the background.

    Before the corridor, parts apart inside a whole always made it a cluster: a large object cut into
    several fragments lost its whole (inverted nuclei F1 0.905 → 0.917, uneven illumination 0.851 →
    0.863 with it; the other variants unchanged).
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
    finite = np.isfinite(patch)
    seam = m_whole & ndi.binary_dilation(m_a, iterations=width) & ndi.binary_dilation(m_b, iterations=width)
    seam &= finite
    if not seam.any():  # parts apart inside the whole: what lies between them
        seam = _corridor(m_whole, m_a, m_b, width) & finite
    # the parts' pixels flanking the seam (their dim outer edges would bias a mean over whole parts)
    near = ndi.binary_dilation(seam, iterations=width + 2)
    parts = (m_a | m_b) & near & ~seam & finite
    if not seam.any() or not parts.any():
        return None
    inside = float(patch[parts].mean())
    if inside <= background:
        return None
    return (inside - float(patch[seam].mean())) / (inside - background)


def _corridor(m_whole: np.ndarray, m_a: np.ndarray, m_b: np.ndarray, width: int) -> np.ndarray:
    """The pixels of ``m_whole`` outside both parts that lie on the shortest ways between them: where
    the distances to ``a`` and to ``b`` add up to at most their separation inside the whole plus
    2·``width``. Empty when the whole has no pixel outside the parts.
    """
    from scipy import ndimage as ndi

    rest = m_whole & ~m_a & ~m_b
    if not rest.any() or not m_a.any() or not m_b.any():
        return np.zeros_like(m_whole)
    through = ndi.distance_transform_edt(~m_a) + ndi.distance_transform_edt(~m_b)
    return rest & (through <= through[rest].min() + 2 * width)


OWN_SCALE = 1.25
OWN_SCALE_VALLEY = 0.25


def scale_preference(cands: Candidates, i: int, smooth: np.ndarray, typical_radius: float) -> float:
    """How much more mask ``i`` looks like one blob of its own size than like blobs of the typical size:
    the strongest scale-normalised blob response (:func:`~napari_sam.automatic.scale.log_responses`)
    inside the mask at σ = its own equivalent radius, over the strongest at σ = ``typical_radius``.

    A uniform disk responds most at σ equal to its radius, so one large object among small ones gives
    clearly more than 1 (synthetic ellipses of radius 22 px among ones of 7 px: 0.93–1.89, 37 of 41 at
    1.25 or more), while two or three touching objects of the typical size give less (the masks over
    two or more nuclei that are larger than 1.4 typical nuclei, on the eight nuclei variants:
    0.39–1.18). 0.0 for an empty mask or no response.
    """
    from napari_sam.automatic.scale import log_responses

    (r, c), m = cands.offsets[i], cands.masks[i]
    area = float(m.sum())
    if area == 0:
        return 0.0
    own = float(np.sqrt(area / np.pi))
    pad = int(np.ceil(3 * max(own, typical_radius)))
    h, w = smooth.shape
    r0, c0 = max(int(r) - pad, 0), max(int(c) - pad, 0)
    r1, c1 = min(int(r) + m.shape[0] + pad, h), min(int(c) + m.shape[1] + pad, w)
    resp = log_responses(smooth[r0:r1, c0:c1], np.array([typical_radius, own]))
    inside = resp[:, int(r) - r0 : int(r) - r0 + m.shape[0], int(c) - c0 : int(c) - c0 + m.shape[1]][:, m]
    at_typical, at_own = float(inside[0].max()), float(inside[1].max())
    return at_own / at_typical if at_typical > 0 else (np.inf if at_own > 0 else 0.0)


def cluster_masks(cands: Candidates, **options) -> np.ndarray:
    """(N,) bool: masks that hold two smaller candidates which barely overlap each other.

    With ``smooth`` (the objects-bright image, smoothed), a mask up to ``max_whole_area`` pixels is a
    cluster only where a darker seam separates two such parts (:func:`seam_valley` at least
    ``min_valley``): two halves of one noisy nucleus are not two nuclei. Without it, and for larger
    masks, any two such parts make a cluster. ``options``: those of :func:`mask_roles`.
    """
    return mask_roles(cands, **options).clusters


class MaskRoles(NamedTuple):
    """What the seams say of each candidate mask: three (N,) bool arrays.

    Attributes
    ----------
    fragments
        Parts of a mask that holds them without a seam between them (one object cut in pieces): the
        whole should win over them.
    clusters
        Masks over two or more objects.
    wholes
        Masks holding such fragments and no seam at all: one object, whatever its size.
    """

    fragments: np.ndarray
    clusters: np.ndarray
    wholes: np.ndarray


def mask_roles(
    cands: Candidates,
    *,
    contain: float = 0.7,
    max_part: float = 0.75,
    disjoint: float = 0.2,
    smooth: np.ndarray | None = None,
    background: float = 0.0,
    min_valley: float = 0.04,
    max_whole_area: float = np.inf,
    typical_radius: float | None = None,
    own_scale: float = OWN_SCALE,
    own_scale_valley: float = OWN_SCALE_VALLEY,
) -> MaskRoles:
    """Fragments, clusters and wholes among ``cands`` (:class:`MaskRoles`).

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
        Masks larger than this (pixels; e.g. 1.4 typical objects) are clusters whatever their seam,
        unless ``typical_radius`` (pixels) is given and the image shows the mask as one blob of its own
        size: :func:`scale_preference` at least ``own_scale`` (one large object among small ones).
        Such a mask is a cluster only where a seam is at least ``own_scale_valley`` deep: a large
        object cut into many fragments has many seams to test, and its dimmer rim gives some of them
        shallow valleys (up to 0.12 on synthetic ellipses) that are no boundary.
    """
    if not (0 < contain <= 1 and 0 < max_part < 1 and 0 <= disjoint < 1):
        raise ValueError(
            f"need 0 < contain ≤ 1, 0 < max_part < 1, 0 ≤ disjoint < 1; got {contain}, {max_part}, {disjoint}"
        )
    areas = cands.areas.astype(np.float64)
    inter = pairwise_intersections(cands)
    clusters = np.zeros(len(cands), dtype=bool)
    fragments = np.zeros(len(cands), dtype=bool)
    wholes = np.zeros(len(cands), dtype=bool)
    for i in range(len(cands)):
        parts = np.flatnonzero((inter[i] >= contain * areas) & (areas <= max_part * areas[i]) & (areas > 0))
        if len(parts) < 2:
            continue
        sub = inter[np.ix_(parts, parts)]
        small = np.minimum(areas[parts][:, None], areas[parts][None, :])
        pairs = np.argwhere(np.triu(sub < disjoint * small, 1))
        if not len(pairs):
            continue
        if smooth is None:
            clusters[i] = True
            continue
        needed = min_valley
        if areas[i] > max_whole_area:
            if not (typical_radius and scale_preference(cands, i, smooth, typical_radius) >= own_scale):
                clusters[i] = True
                continue
            needed = own_scale_valley  # one blob at its own scale: only a deep seam splits it
        halves = []
        for ja, jb in pairs:
            a, b = int(parts[ja]), int(parts[jb])
            valley = seam_valley(cands, i, a, b, smooth, background)
            if valley is None or valley >= needed:
                clusters[i] = True
                break
            halves += [a, b]
        if not clusters[i]:
            fragments[halves] = True
            wholes[i] = True
    fragments &= ~clusters
    return MaskRoles(fragments, clusters, wholes & ~fragments)
