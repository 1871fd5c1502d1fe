"""A click on a nucleus gives that nucleus: session clicks on the innermost pixels of real nuclei (the
stardist image and its H&E-like rendering), each in a fresh session, with the real LiteMedSAM."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_sam.io.sample_variants import variant
from napari_sam.segmenter import Segmenter


def _clicked_objects(truth: np.ndarray, count: int, seed: int = 0) -> list[int]:
    """``count`` labels drawn at random among the objects that do not touch the image's edge."""
    boxes = ndi.find_objects(truth)
    h, w = truth.shape
    inner = [
        i
        for i, b in enumerate(boxes, start=1)
        if b is not None and b[0].start > 0 and b[1].start > 0 and b[0].stop < h and b[1].stop < w
    ]
    return [int(i) for i in np.random.default_rng(seed).permutation(inner)[:count]]


def _click_iou(model, image: np.ndarray, mask: np.ndarray) -> float:
    """IoU with ``mask`` of a fresh session's answer to a click on its innermost pixel."""
    depth = ndi.distance_transform_edt(mask)
    click = np.unravel_index(np.argmax(depth), depth.shape)
    seg = Segmenter(model)
    seg.set_image(image)
    answer = seg.predict(points=[click]).masks[0]
    return float((answer & mask).sum() / (answer | mask).sum())


# the search window, whole image → zoom window of a typical nucleus; these 24 clicks, mean IoU and share
# of IoU ≥ 0.5 (Xeon without AMX, /tmp/s22/clickq24.py): original 0.565 / 0.62 (the code before, fp32)
# → 0.743 / 0.92 (fp32) and 0.742 / 0.88 (bf16); H&E-like 0.495 / 0.54 → 0.638 / 0.67 and 0.658 / 0.71.
# With 12 clicks one click flipping between two search answers moved the mean by 0.04 (H&E-like fp32
# 0.575, bf16 0.620, the same code): 24 keep a precision's rounding from deciding the test.
@pytest.mark.parametrize("name, floor, share", [("original", 0.69, 0.8), ("he", 0.59, 0.58)])
def test_a_click_on_a_nucleus_gives_that_nucleus(lite_medsam, nuclei_data, name, floor, share):
    image, truth = variant(name, *nuclei_data)
    ious = [_click_iou(lite_medsam, image, truth == label) for label in _clicked_objects(truth, 24)]
    assert np.mean(ious) >= floor and np.mean(np.array(ious) >= 0.5) >= share, np.round(ious, 2)


# A large nucleus among small ones: its click is searched at the small ones' scale and may find a piece
# of it (an outline with no edge), then the search runs again in the tile. The 10 large nuclei of the
# mixed-sizes image that do not touch its edge, mean IoU / share ≥ 0.5 (AMX CPU, bf16): 0.537 / 0.50
# → 0.619 / 0.60; nucleus 99 0.035 → 0.852, the rest unchanged.
def test_a_click_on_a_large_nucleus_among_small_ones_gives_all_of_it(lite_medsam, nuclei_data):
    image, truth = variant("mixed", *nuclei_data)
    labels, areas = np.unique(truth[truth > 0], return_counts=True)
    boxes = ndi.find_objects(truth)
    h, w = truth.shape
    large = [
        int(i)
        for i, a in zip(labels, areas)
        if a > 4 * np.median(areas)
        and boxes[i - 1][0].start > 0
        and boxes[i - 1][1].start > 0
        and boxes[i - 1][0].stop < h
        and boxes[i - 1][1].stop < w
    ]
    assert len(large) >= 8
    ious = {label: _click_iou(lite_medsam, image, truth == label) for label in large}
    values = np.array(list(ious.values()))
    # before: one answered by a piece (IoU 0.035); the least now is a mask over neighbours (0.27, as before)
    assert values.mean() >= 0.57 and values.min() >= 0.15, {k: round(v, 2) for k, v in ious.items()}
