"""Point prompts for box-trained models: find the box that the clicked object fills.

LiteMedSAM and MedSAM were trained with box prompts only; a click gives them nothing useful (IoU near
0 on the nuclei) and a point next to a box makes the box's answer worse. For these models a click is
turned into a box: square boxes of growing size centred on the positive points are answered by the
decoder, and the box whose mask holds every positive point, avoids every negative point and
fits its box (neither spilling out nor far smaller) with the highest predicted IoU wins. Its mask's
bounding box then prompts the model as an ordinary box.
"""

from __future__ import annotations

import numpy as np

from napari_sam.geometry.coords import mask_bbox
from napari_sam.geometry.steps import SQRT2

STEP = SQRT2  # the side ratio of successive search boxes. Doubling halves the decoder passes and
# scores the same on the 512² nuclei (mean IoU 0.62–0.65 vs 0.61–0.64), but worse where the image is
# tiled at full resolution (0.40 vs 0.48 on a 640 × 600 crop): √2 it stays.


def search_boxes(points_rc: np.ndarray, max_side: float, min_side: float = 8.0) -> np.ndarray:
    """(K, 4) square boxes (min_row, min_col, max_row, max_col) centred on the points, sides in √2 steps
    from just around the points' spread up to ``max_side``.
    """
    lo, hi = points_rc.min(axis=0), points_rc.max(axis=0)
    centre = (lo + hi) / 2
    side = max(min_side, float((hi - lo).max()) + 4.0)
    sides = []
    while side <= max_side or not sides:
        sides.append(side)
        side *= STEP
    half = np.asarray(sides)[:, None] / 2
    return np.concatenate([centre - half, centre + half], axis=1)


def pick_answer(
    boxes: np.ndarray,
    masks: list[np.ndarray],
    offsets: list[tuple[int, int]],
    scores: np.ndarray,
    positives: np.ndarray,
    negatives: np.ndarray,
    min_fill: float = 0.5,
) -> int | None:
    """The index of the best fitting answer, or None when no answer holds the clicks.

    Parameters
    ----------
    boxes
        (K, 4) the search boxes.
    masks, offsets
        Per box, a (h, w) bool mask crop placed at (row, col).
    scores
        (K,) predicted IoU.
    positives, negatives
        (P, 2) and (Q, 2) (row, col) points the mask must hold / avoid.
    min_fill
        The mask's longest side must be at least this share of its box's side to fit it; where no
        answer fits, the best-scored one that holds the clicks.
    """
    best, best_score, fallback, fallback_score = None, -np.inf, None, -np.inf
    for k, (crop, (r0, c0)) in enumerate(zip(masks, offsets)):
        bbox = mask_bbox(crop)
        if bbox is None:
            continue

        if not all(_inside(crop, r0, c0, p) for p in positives) or any(
            _inside(crop, r0, c0, p) for p in negatives
        ):
            continue
        side = boxes[k, 2] - boxes[k, 0] + 1
        extent = max(bbox[2] - bbox[0] + 1, bbox[3] - bbox[1] + 1)
        if scores[k] > fallback_score:
            fallback, fallback_score = k, scores[k]
        if min_fill * side <= extent <= side and scores[k] > best_score:
            best, best_score = k, scores[k]
    return best if best is not None else fallback


def _inside(crop: np.ndarray, r0: int, c0: int, point) -> bool:
    """Whether (row, col) ``point`` falls on a True pixel of ``crop`` placed at (r0, c0)."""
    r, c = int(round(point[0])) - r0, int(round(point[1])) - c0
    return 0 <= r < crop.shape[0] and 0 <= c < crop.shape[1] and bool(crop[r, c])
