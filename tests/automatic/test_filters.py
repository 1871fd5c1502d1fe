import numpy as np
import pytest

from napari_sam.automatic.filters import (
    Candidates,
    box_iou,
    box_nms,
    clean_mask,
    paint_labels,
    remove_small_regions,
    stability_score,
)
from napari_sam.automatic.metrics import match_scores


def test_box_iou_and_nms_keep_the_best_of_duplicates():
    boxes = np.array([[0, 0, 9, 9], [1, 1, 10, 10], [20, 20, 29, 29]], float)
    assert box_iou(boxes[:1], boxes[:1])[0, 0] == pytest.approx(1.0)
    assert box_iou(boxes[:1], boxes[2:])[0, 0] == 0.0
    keep = box_nms(boxes, np.array([0.5, 0.9, 0.1]), 0.5)
    assert keep.tolist() == [1, 2]


def test_stability_and_small_regions():
    logits = np.full((10, 10), -5.0)
    logits[2:8, 2:8] = 5.0
    assert stability_score(logits) == pytest.approx(1.0)
    m = np.zeros((12, 12), bool)
    m[1:9, 1:9] = True
    m[4, 4] = False  # a one-pixel hole
    m[11, 11] = True  # a one-pixel island
    assert remove_small_regions(m, 3, "holes")[4, 4]
    assert not remove_small_regions(m, 3, "islands")[11, 11]
    assert clean_mask(m).sum() == 64
    with pytest.raises(ValueError, match="islands"):
        remove_small_regions(m, 3, "both")


def test_paint_labels_resolves_overlaps_by_score():
    a = np.ones((10, 10), bool)
    b = np.ones((10, 10), bool)
    c = np.ones((4, 4), bool)
    cands = Candidates(
        [a, b, c],
        np.array([[0, 0], [2, 2], [30, 30]]),
        np.array([0.9, 0.8, 0.7], np.float32),
        np.ones(3, np.float32),
        np.arange(3),
    )
    labels, kept = paint_labels(cands, (40, 40), max_overlap=0.3)
    assert kept.tolist() == [0, 2]  # b overlaps a by 64 % and is dropped
    assert labels.max() == 2 and (labels == 1).sum() == 100


def test_match_scores_one_to_one():
    truth = np.zeros((20, 20), int)
    truth[2:8, 2:8] = 5
    truth[10:18, 10:18] = 9
    pred = np.zeros_like(truth)
    pred[2:8, 2:9] = 1
    pred[0:2, 15:20] = 2
    s = match_scores(pred, truth)
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 1)
    assert s["f1"] == pytest.approx(0.5)


def test_cluster_masks_drops_a_mask_over_two_objects():
    from napari_sam.automatic.clusters import cluster_masks
    from napari_sam.automatic.filters import Candidates

    a = np.zeros((20, 40), bool)
    a[5:15, 2:18] = True
    b = np.zeros((20, 40), bool)
    b[5:15, 22:38] = True
    both = a | b
    c = Candidates(
        [a, b, both], np.zeros((3, 2), np.int64), np.ones(3, np.float32), np.ones(3, np.float32), np.arange(3)
    )
    assert cluster_masks(c).tolist() == [False, False, True]
    with pytest.raises(ValueError):
        cluster_masks(c, contain=0)
