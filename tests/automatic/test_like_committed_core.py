"""segment_like_committed on a session: new objects like the committed ones, never over them."""

import numpy as np
import pytest

from napari_sam.automatic import match_scores, segment_like_committed
from napari_sam.segmenter import Segmenter


@pytest.fixture()
def corner(nuclei_data):
    img, truth = nuclei_data
    from skimage.segmentation import relabel_sequential

    return img[:160, :160], relabel_sequential(truth[:160, :160])[0]


def test_finds_more_like_the_committed_and_commit_labels_adds_them(lite_medsam, corner):
    img, truth = corner
    seg = Segmenter(lite_medsam)
    seg.set_image(img)
    with pytest.raises(ValueError, match="no committed objects"):
        segment_like_committed(seg)
    areas = np.bincount(truth.ravel())[1:]
    examples = np.argsort(areas)[::-1][1:4] + 1  # three typical, large nuclei
    for k in examples:
        seg.commit(truth == k)
    committed = seg.labels.copy()
    found, info = segment_like_committed(seg, return_info=True)
    assert found.shape == img.shape and found.max() == info["planes"][0]["new_objects"] >= 4
    assert not (found[committed > 0]).any()  # never over a committed object
    rest = np.where(np.isin(truth, examples), 0, truth)
    assert match_scores(found, rest)["precision"] >= 0.7
    ids = seg.commit_labels(found)
    assert len(ids) == found.max() and seg.labels.max() == 3 + len(ids)
    assert seg.undo() == ids[-1] and seg.labels.max() == 3 + len(ids) - 1
    with pytest.raises(ValueError, match="do not fit"):
        seg.commit_labels(found[:100])


def test_the_score_threshold_follows_the_examples_scores_only_downwards():
    from napari_sam.automatic.examples import score_threshold
    from napari_sam.automatic.filters import Candidates

    def cands(scores, num_proposals):
        n = len(scores)
        masks = [np.ones((2, 2), bool)] * n
        return Candidates(
            masks, np.zeros((n, 2), np.int64), np.array(scores, np.float32), np.ones(n), np.arange(n)
        )

    low = cands([0.9, 0.95, 0.37, 0.73, 0.73, 0.87, 0.89], 2)  # examples: the last five, median 0.73
    assert score_threshold(low, 2, 0.7) == pytest.approx(0.63)
    high = cands([0.5, 0.86, 0.9, 0.88, 0.91, 0.8], 1)
    assert score_threshold(high, 1, 0.7) == 0.7
    assert score_threshold(cands([0.5, 0.6], 2), 2, 0.7) == 0.7  # no examples
