"""The predicted-IoU bar a candidate mask must reach, lowered where the model scores this image's objects
low.

The model scores some images' objects lower than others': on the 2× down-scaled nuclei the answers to
typical proposal boxes score a median 0.754, against 0.848–0.871 on the six other 512² variants of
:mod:`napari_sam.io.sample_variants`, so the default bar of 0.7 dropped nuclei the model answered well
for scores of 0.6–0.7. The bar is therefore at most ``margin`` under the median predicted IoU of a
reference set of candidates: the examples' own boxes when the user gave examples
(:mod:`~napari_sam.automatic.examples`), else the candidates of typical-sized proposals (the median
box's extent within 0.75–1.33×: most of them are the image's objects).
"""

from __future__ import annotations

import numpy as np

from napari_sam.automatic.filters import Candidates

SCORE_MARGIN = 0.1  # candidates pass down to this much under the reference candidates' median score


def lowered_threshold(reference_scores: np.ndarray, threshold: float, margin: float = SCORE_MARGIN) -> float:
    """``threshold``, or ``margin`` under the median of ``reference_scores`` (any shape, predicted IoU in
    [0, 1]) where that is lower; ``threshold`` with no reference scores.
    """
    scores = np.asarray(reference_scores, dtype=np.float64).ravel()
    if not scores.size:
        return float(threshold)
    return float(min(threshold, np.median(scores) - margin))


def typical_boxes(boxes_rc: np.ndarray) -> np.ndarray:
    """(N,) bool: boxes whose longest extent lies within 0.75–1.33× the median box's.

    ``boxes_rc`` is (N, 4) (min_row, min_col, max_row, max_col), max inclusive.
    """
    boxes = np.asarray(boxes_rc, dtype=np.float64).reshape(-1, 4)
    if not len(boxes):
        return np.zeros(0, dtype=bool)
    extent = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) + 1
    med = float(np.median(extent))
    return (extent >= 0.75 * med) & (extent <= med / 0.75)


def typical_threshold(cands: Candidates, boxes_rc: np.ndarray, threshold: float) -> float:
    """The bar for ``cands`` answering the proposal boxes ``boxes_rc`` (N, 4) (candidate i answers
    ``boxes_rc[cands.prompt[i]]``): :func:`lowered_threshold` of the typical boxes' candidates.
    """
    if not len(cands):
        return float(threshold)
    typical = typical_boxes(boxes_rc)[cands.prompt]
    return lowered_threshold(cands.scores[typical], threshold)
