import numpy as np

from napari_sam.io.sample_variants import block_majority, downscaled


def test_block_majority_gives_each_block_what_covers_most_of_it():
    labels = np.zeros((4, 6), np.int32)
    labels[0:2, 0:2] = [[1, 1], [1, 0]]  # 3 of 4: object 1
    labels[0:2, 2:4] = [[0, 0], [0, 2]]  # 1 of 4: background
    labels[0:2, 4:6] = [[3, 3], [0, 0]]  # a tie with the background: the object
    labels[2:4, 0:2] = [[4, 4], [5, 5]]  # a tie of two objects: the first in raster order
    labels[2:4, 2:4] = [[5, 6], [6, 6]]
    assert block_majority(labels, 2).tolist() == [[1, 0, 3], [4, 6, 0]]


def test_down_scaled_truth_agrees_with_the_block_means_of_each_object():
    """A disk's down-scaled truth is the blocks it covers at least half of: no half-pixel shift."""
    yy, xx = np.mgrid[:64, :64]
    truth = ((yy - 31.5) ** 2 + (xx - 31.5) ** 2 <= 10.5**2).astype(np.int32)
    img = (truth * 200 + 20).astype(np.uint16)
    for factor in (2, 4):
        small, lab = downscaled(img, truth, factor)
        cover = truth.reshape(64 // factor, factor, 64 // factor, factor).mean(axis=(1, 3))
        assert np.array_equal(lab > 0, cover >= 0.5)
        assert np.array_equal(lab > 0, small >= (20 + 200 * 0.5))  # the image's half-way contour
        assert np.array_equal(lab, lab[::-1, ::-1])  # symmetric like the disk: centred, not shifted
