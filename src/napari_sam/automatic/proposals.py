"""Candidate object boxes from classical image analysis, for box-prompted ("proposal") segmentation.

Box-trained models (LiteMedSAM, MedSAM) answer box prompts well but score point prompts low, so a grid
of points finds nothing. Here candidate boxes come from the image itself, at several scales:

* the connected components of the foreground (a smoothed image above its Otsu threshold);
* a watershed of the foreground's distance transform, seeded at its maxima at two spacings (splits
  touching round objects);
* a watershed of the smoothed intensity, seeded at its regional maxima (splits objects that touch
  along a darker line).

Every candidate is a (min_row, min_col, max_row, max_col) box in image pixels, max inclusive. The
same functions give the classical baseline (:func:`otsu_watershed`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi


@dataclass
class Proposals:
    """Candidate boxes.

    Attributes
    ----------
    boxes
        (N, 4) float64 boxes (min_row, min_col, max_row, max_col).
    source
        (N,) str: which generator proposed each box (the first one, after de-duplication).
    diameter
        Typical object diameter in pixels, estimated from the foreground.
    threshold
        The foreground threshold (on the gray image).
    reading
        How the image was read: channel, polarity, background correction (see
        :func:`~napari_sam.automatic.box_mode.propose`).
    image
        (H, W) float32 image with the objects bright that the proposals were read from, or None.
    """

    boxes: np.ndarray
    source: np.ndarray
    diameter: float
    threshold: float
    reading: dict = field(default_factory=dict)
    image: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.boxes)


def to_gray(rgb255: np.ndarray) -> np.ndarray:
    """(H, W, 3) or (H, W) display pixels → (H, W) float32 gray."""
    x = np.asarray(rgb255, dtype=np.float32)
    return x.mean(axis=-1) if x.ndim == 3 else x


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of finite ``values``."""
    from skimage.filters import threshold_otsu

    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0 or v.min() == v.max():
        return float(v.min()) if v.size else 0.0
    return float(threshold_otsu(v, nbins=bins))


def label_boxes(labels: np.ndarray, min_area: int = 1) -> np.ndarray:
    """(N, 4) boxes of the non-zero labels of an (H, W) label image with at least ``min_area`` pixels."""
    objs = ndi.find_objects(labels)
    areas = np.bincount(labels.ravel())
    out = [
        (s[0].start, s[1].start, s[0].stop - 1, s[1].stop - 1)
        for i, s in enumerate(objs, start=1)
        if s is not None and areas[i] >= min_area
    ]
    return np.array(out, dtype=np.float64).reshape(-1, 4)


def _seeded_watershed(elevation: np.ndarray, seeds: np.ndarray, mask: np.ndarray) -> np.ndarray:
    from skimage.segmentation import watershed

    markers, _ = ndi.label(seeds)
    return watershed(elevation, markers, mask=mask)


def _maxima(image: np.ndarray, min_distance: int, mask: np.ndarray) -> np.ndarray:
    """Local maxima of ``image`` at least ``min_distance`` apart, inside ``mask``, as a bool image."""
    size = 2 * max(1, int(min_distance)) + 1
    peaks = (image == ndi.maximum_filter(image, size=size)) & mask & (image > 0)
    return peaks


def estimate_diameter(foreground: np.ndarray, min_area: int = 9) -> float:
    """Median equivalent diameter of the foreground's components (small specks ignored)."""
    lab, n = ndi.label(foreground)
    if n == 0:
        return 0.0
    areas = np.bincount(lab.ravel())[1:]
    areas = areas[areas >= min_area]
    if areas.size == 0:
        return 0.0
    # clusters of touching objects inflate the median; the lower half is closer to single objects
    return float(2.0 * np.sqrt(np.percentile(areas, 40) / np.pi))


def foreground_mask(
    gray: np.ndarray, sigma: float = 1.0, threshold: float | None = None, min_area: int = 9
) -> tuple[np.ndarray, np.ndarray, float]:
    """Smoothed image, its foreground (above Otsu's threshold, holes filled, specks removed) and the
    threshold.
    """
    smooth = ndi.gaussian_filter(np.asarray(gray, dtype=np.float32), sigma)
    t = otsu_threshold(smooth) if threshold is None else float(threshold)
    fg = ndi.binary_fill_holes(smooth > t)
    lab, n = ndi.label(fg)
    if n:
        areas = np.bincount(lab.ravel())
        fg &= areas[lab] >= min_area
    return smooth, fg, t


def otsu_watershed(gray: np.ndarray, sigma: float = 1.0, min_distance: int | None = None) -> np.ndarray:
    """The classical baseline: Otsu foreground split by a distance-transform watershed.

    Returns an (H, W) int32 label image.
    """
    _, fg, _ = foreground_mask(gray, sigma)
    if not fg.any():
        return np.zeros(fg.shape, dtype=np.int32)
    d = estimate_diameter(fg)
    md = int(min_distance) if min_distance is not None else max(2, int(round(0.3 * d)))
    dist = ndi.distance_transform_edt(fg)
    return _seeded_watershed(-dist, _maxima(dist, md, fg), fg).astype(np.int32)


def smallest_proposal_area(diameter: float) -> int:
    """The smallest region proposed for objects of ``diameter`` pixels: (diameter / 4)² · π, at least 9."""
    return max(9, int(np.pi * (diameter / 4) ** 2))


def dedupe_boxes(boxes: np.ndarray, iou_threshold: float = 0.75) -> np.ndarray:
    """Indices of boxes kept when later near-duplicates (box IoU above the threshold) are dropped."""
    from napari_sam.automatic.filters import box_iou

    keep: list[int] = []
    for i in range(len(boxes)):
        if not keep or box_iou(boxes[i : i + 1], boxes[keep]).max() <= iou_threshold:
            keep.append(i)
    return np.array(keep, dtype=np.int64)


def _level_sets(
    g: np.ndarray,
    fg: np.ndarray,
    d: float,
    sigma: float,
    spacings: tuple[float, ...],
    intensity_split: bool,
    min_area: int,
    suffix: str,
) -> list[tuple[str, np.ndarray]]:
    """(generator name, boxes) of one foreground: distance watersheds, intensity watershed, components."""
    sets: list[tuple[str, np.ndarray]] = []
    dist = ndi.distance_transform_edt(fg)
    for f in spacings:
        md = max(2, int(round(f * d)))
        sets.append(
            (
                f"distance{f:g}{suffix}",
                label_boxes(_seeded_watershed(-dist, _maxima(dist, md, fg), fg), min_area),
            )
        )
    if intensity_split:
        s2 = ndi.gaussian_filter(g, max(sigma, d / 8))
        md = max(2, int(round(0.4 * d)))
        sets.append(
            (f"intensity{suffix}", label_boxes(_seeded_watershed(-s2, _maxima(s2, md, fg), fg), min_area))
        )
    comps, _ = ndi.label(fg)
    sets.append((f"component{suffix}", label_boxes(comps, min_area)))
    return sets


def propose_boxes(
    gray: np.ndarray,
    *,
    sigma: float = 1.0,
    threshold: float | None = None,
    diameter: float | None = None,
    spacings: tuple[float, ...] = (0.3, 0.5),
    intensity_split: bool = True,
    min_area: int | None = None,
    max_area_fraction: float = 0.25,
    dedupe_iou: float = 0.75,
    pad: float = 1.0,
    low_levels: tuple[float, ...] = (),
) -> Proposals:
    """Candidate boxes for one 2D image.

    Parameters
    ----------
    gray
        (H, W) float image (display pixels or raw values).
    sigma
        Gaussian smoothing (pixels) before thresholding.
    threshold
        Foreground threshold on the smoothed image (default: Otsu's).
    diameter
        Typical object diameter in pixels (default: estimated from the foreground).
    spacings
        Seed spacings of the distance-transform watershed, as fractions of the diameter.
    intensity_split
        Add the intensity watershed's regions.
    min_area
        Smallest candidate in pixels (default: :func:`smallest_proposal_area` of ``diameter``).
    max_area_fraction
        Largest candidate, as a fraction of the image.
    dedupe_iou
        Candidates overlapping an earlier one by more than this box IoU are dropped.
    pad
        Pixels added around every box (box prompts slightly larger than the object work best).
    low_levels
        Also propose from foregrounds at lower thresholds, each given as a fraction f of the way from the
        background level (the smoothed image's median) to the threshold: dim objects that the first
        threshold cuts off or misses get boxes of their own (de-duplicated against the first level's).
    """
    if any(not 0 < f < 1 for f in low_levels):
        raise ValueError(f"low_levels must lie in (0, 1), got {low_levels}")
    g = np.asarray(gray, dtype=np.float32)
    if g.ndim != 2:
        raise ValueError(f"propose_boxes needs one 2D gray plane, got shape {g.shape}")
    smooth, fg, t = foreground_mask(g, sigma, threshold)
    d = float(diameter) if diameter else estimate_diameter(fg)
    if not fg.any() or d <= 0:
        return Proposals(np.zeros((0, 4)), np.zeros(0, dtype="<U20"), d, t)
    if min_area is None:
        min_area = smallest_proposal_area(d)
    max_area = max_area_fraction * g.size
    sets = _level_sets(g, fg, d, sigma, spacings, intensity_split, min_area, "")
    background = float(np.median(smooth))
    for f in low_levels:
        level = background + f * (t - background)
        _, fg_low, _ = foreground_mask(g, sigma, level)
        sets += _level_sets(g, fg_low, d, sigma, spacings, intensity_split, min_area, f"@{f:g}")
    boxes = np.concatenate([b for _, b in sets]) if sets else np.zeros((0, 4))
    source = (
        np.concatenate([np.full(len(b), name) for name, b in sets]) if sets else np.zeros(0, dtype="<U20")
    )
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    ok = area <= max_area
    boxes, source = boxes[ok], source[ok]
    keep = dedupe_boxes(boxes, dedupe_iou)
    boxes, source = boxes[keep], source[keep]
    h, w = g.shape
    boxes = boxes + np.array([-pad, -pad, pad, pad])
    boxes = np.clip(boxes, 0, [h - 1, w - 1, h - 1, w - 1])
    return Proposals(boxes, source, d, t)
