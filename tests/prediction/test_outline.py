"""The contrast across a mask's outline tells a whole object from a piece of a larger one."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from napari_sam.prediction.outline import WEAK_OUTLINE, outline_contrast


def _disks() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A noisy image with a large bright disk (radius 40) and a small one (radius 10)."""
    rows, cols = np.indices((200, 200))
    large = (rows - 100) ** 2 + (cols - 70) ** 2 <= 40**2
    small = (rows - 100) ** 2 + (cols - 160) ** 2 <= 10**2
    rng = np.random.default_rng(0)
    image = ndi.gaussian_filter(100.0 * (large | small), 1.0) + rng.normal(0, 5, large.shape) + 20
    return image.astype(np.float32), large, small


def _crop(mask: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    sl = ndi.find_objects(mask.astype(np.uint8))[0]
    return mask[sl], (sl[0].start, sl[1].start)


def test_a_whole_object_has_a_strong_outline_and_a_piece_of_one_none():
    image, large, small = _disks()
    for whole in (large, small):
        assert outline_contrast(image, *_crop(whole)) > 0.5
        assert outline_contrast(-image, *_crop(whole)) < -0.5  # dark objects: the sign turns over
    rows, cols = np.indices(image.shape)
    piece = (rows - 100) ** 2 + (cols - 70) ** 2 <= 12**2  # the large disk's middle
    assert abs(outline_contrast(image, *_crop(piece))) < WEAK_OUTLINE


def test_a_crop_placed_in_the_image_frame_is_read_where_it_lies():
    image, _, small = _disks()
    mask, (r, c) = _crop(small)
    assert outline_contrast(image, mask, (r, c)) > 0.5
    assert abs(outline_contrast(image, mask, (r - 80, c))) < WEAK_OUTLINE  # moved onto flat background


def test_empty_masks_and_flat_images_have_no_contrast():
    image, _, small = _disks()
    assert outline_contrast(image, np.zeros((5, 5), bool), (0, 0)) == 0.0
    assert outline_contrast(np.ones((50, 50), np.float32), np.ones((10, 10), bool), (20, 20)) == 0.0
