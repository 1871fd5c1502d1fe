"""Edge ratios: a whole object stands out of its surroundings, a fragment cut from inside it does not."""

import numpy as np
import pytest

from napari_sam.automatic.edges import edge_ratios, edge_weights
from napari_sam.automatic.filters import Candidates, paint_labels


def disk(shape, centre, radius):
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (rr - centre[0]) ** 2 + (cc - centre[1]) ** 2 <= radius**2


def candidates(masks, scores):
    n = len(masks)
    return Candidates(
        list(masks),
        np.zeros((n, 2), np.int64),
        np.asarray(scores, np.float32),
        np.ones(n, np.float32),
        np.arange(n),
    )


def test_a_fragment_is_ranked_below_its_whole_object():
    rng = np.random.default_rng(0)
    shape = (64, 64)
    whole = disk(shape, (32, 32), 12)
    image = 20.0 + 100.0 * whole + rng.normal(0, 3, shape)
    half = whole.copy()
    half[:, 32:] = False  # the left half: its ring runs through the rest of the nucleus
    cands = candidates([whole, half], scores=[0.80, 0.95])  # the model prefers the fragment
    ratios = edge_ratios(cands, image, diameter=24)
    assert ratios[0] > 0.4 and ratios[1] < 0.1
    weights = edge_weights(cands, image, diameter=24)
    assert weights.tolist() == pytest.approx([1.0, 0.3])
    order = np.argsort(-(cands.scores * weights))
    labels, kept = paint_labels(cands, shape, order=order, max_overlap=0.3)
    assert kept.tolist() == [0]  # the whole object is painted, the fragment dropped
    # without the weights the fragment would have won and the whole been dropped
    _, kept_by_score = paint_labels(cands, shape, max_overlap=0.3)
    assert kept_by_score.tolist() == [1]


def test_masks_on_background_and_bad_settings():
    image = np.zeros((32, 32), np.float32)
    image[8:16, 8:16] = 50.0
    empty = np.zeros((32, 32), bool)
    dark = np.zeros((32, 32), bool)
    dark[20:28, 20:28] = True  # as dark as the background: no contrast of its own
    cands = candidates([empty, dark], [0.9, 0.9])
    assert edge_ratios(cands, image, diameter=8).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="full_weight_ratio"):
        edge_weights(cands, image, 8, full_weight_ratio=0)
