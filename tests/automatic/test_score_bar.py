"""The predicted-IoU bar, lowered where the model scores the reference candidates low."""

import numpy as np
import pytest

from napari_sam.automatic.filters import Candidates
from napari_sam.automatic.score_bar import lowered_threshold, typical_boxes, typical_threshold


def _cands(scores, prompts) -> Candidates:
    n = len(scores)
    return Candidates(
        [np.ones((2, 2), bool)] * n,
        np.zeros((n, 2), np.int64),
        np.asarray(scores, np.float32),
        np.ones(n, np.float32),
        np.asarray(prompts, np.int64),
    )


def test_the_bar_only_goes_down():
    assert lowered_threshold([0.72, 0.75, 0.78], 0.7) == pytest.approx(0.65)
    assert lowered_threshold([0.9, 0.95], 0.7) == 0.7
    assert lowered_threshold([], 0.7) == 0.7


def test_typical_boxes_are_those_near_the_median_extent():
    boxes = np.array([[0, 0, 9, 9], [0, 0, 10, 10], [0, 0, 8, 8], [0, 0, 39, 39], [0, 0, 2, 2]], float)
    assert typical_boxes(boxes).tolist() == [True, True, True, False, False]
    assert typical_boxes(np.zeros((0, 4))).size == 0


def test_only_the_typical_boxes_answers_set_the_bar():
    boxes = np.array([[0, 0, 9, 9], [20, 20, 29, 29], [40, 40, 49, 49], [0, 0, 99, 99]], float)
    # three typical boxes scored low, one large box (a cluster) scored 0.2: it does not pull the bar down
    low = _cands([0.7, 0.72, 0.74, 0.2], [0, 1, 2, 3])
    assert typical_threshold(low, boxes, 0.7) == pytest.approx(0.62)
    high = _cands([0.85, 0.9, 0.88, 0.2], [0, 1, 2, 3])
    assert typical_threshold(high, boxes, 0.7) == 0.7
    assert typical_threshold(_cands([], []), boxes, 0.7) == 0.7
