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
