"""A mask over two touching objects, or one object cut in two? The seam between the parts decides."""

import numpy as np
from skimage.draw import disk, ellipse

from napari_sam.automatic.clusters import seam_valley, wholes_and_clusters
from napari_sam.automatic.filters import Candidates


def _cands(masks):
    n = len(masks)
    return Candidates(
        masks, np.zeros((n, 2), np.int64), np.ones(n, np.float32), np.ones(n, np.float32), np.arange(n)
    )


def _halves(whole: np.ndarray, col: int) -> tuple[np.ndarray, np.ndarray]:
    left, right = whole.copy(), whole.copy()
    left[:, col:] = False
    right[:, :col] = False
    return left, right


def test_two_touching_nuclei_with_a_darker_seam_are_a_cluster():
    image = np.full((40, 60), 10.0)
    a = np.zeros(image.shape, bool)
    b = np.zeros(image.shape, bool)
    a[disk((20, 20), 10, shape=image.shape)] = True
    b[disk((20, 39), 10, shape=image.shape)] = True
    image[a | b] = 100.0
    image[:, 28:31] = np.where((a | b)[:, 28:31], 60.0, 10.0)  # the dimmer line where they touch
    whole = a | b
    left, right = _halves(whole, 30)
    c = _cands([left, right, whole])
    assert seam_valley(c, 2, 0, 1, image, 10.0) > 0.2
    fragments, clusters = wholes_and_clusters(c, smooth=image, background=10.0)
    assert clusters.tolist() == [False, False, True] and not fragments.any()


def test_one_nucleus_cut_in_two_stays_whole_and_its_halves_rank_below_it():
    rng = np.random.default_rng(0)
    image = np.full((40, 60), 10.0) + rng.normal(0, 2, (40, 60))
    whole = np.zeros(image.shape, bool)
    whole[ellipse(20, 30, 10, 20, shape=image.shape)] = True
    image[whole] += 90.0
    left, right = _halves(whole, 30)
    c = _cands([left, right, whole])
    assert abs(seam_valley(c, 2, 0, 1, image, 10.0)) < 0.04
    fragments, clusters = wholes_and_clusters(c, smooth=image, background=10.0)
    assert clusters.tolist() == [False, False, False]
    assert fragments.tolist() == [True, True, False]
    # without the image, or larger than a whole may be, it is a cluster as before
    assert wholes_and_clusters(c)[1].tolist() == [False, False, True]
    big = wholes_and_clusters(c, smooth=image, background=10.0, max_whole_area=whole.sum() - 1)
    assert big[1].tolist() == [False, False, True]
