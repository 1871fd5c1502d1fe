"""The session API on the real nuclei image with the real LiteMedSAM weights."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.measure import regionprops

from napari_sam.segmenter import Segmenter


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture(scope="module")
def nuclei_boxes(nuclei_data):
    """40 random ground-truth nuclei: boxes (min_row, min_col, max_row, max_col) and their labels."""
    _, gt = nuclei_data
    props = regionprops(gt)
    chosen = np.random.default_rng(0).choice(len(props), 40, replace=False)
    boxes = np.array(
        [[props[i].bbox[0], props[i].bbox[1], props[i].bbox[2] - 1, props[i].bbox[3] - 1] for i in chosen]
    )
    return boxes, [props[i].label for i in chosen]


@pytest.fixture(scope="module")
def segmenter(lite_medsam, nuclei_data):
    seg = Segmenter(lite_medsam)
    seg.set_image(nuclei_data[0])
    return seg


@pytest.mark.slow
def test_ground_truth_boxes_reach_the_zoom_target(segmenter, nuclei_data, nuclei_boxes):
    """Issue target: mIoU ≥ 0.80 with the default zoom on 40 random nuclei (whole image: about 0.65)."""
    _, gt = nuclei_data
    boxes, ids = nuclei_boxes
    res = segmenter.predict(box=boxes)
    assert res.masks.shape == (40, *gt.shape) and res.masks.dtype == bool
    assert res.scores.shape == (40, 1)
    ious = [_iou(res.masks[k], gt == i) for k, i in enumerate(ids)]
    assert np.mean(ious) >= 0.80


def test_zoom_beats_the_whole_image(lite_medsam, segmenter, nuclei_data, nuclei_boxes):
    _, gt = nuclei_data
    boxes, ids = nuclei_boxes
    whole = Segmenter(lite_medsam, zoom=False)
    whole.set_image(nuclei_data[0])
    a = whole.predict(box=boxes[:8])
    b = segmenter.predict(box=boxes[:8])
    iou_whole = np.mean([_iou(a.masks[k], gt == i) for k, i in enumerate(ids[:8])])
    iou_zoom = np.mean([_iou(b.masks[k], gt == i) for k, i in enumerate(ids[:8])])
    assert iou_zoom > iou_whole
    assert all(w.size == max(gt.shape) for w in a.windows)
    assert all(w.size < max(gt.shape) for w in b.windows)


def test_point_and_box_multimask_and_refinement(segmenter, nuclei_data, nuclei_boxes):
    _, gt = nuclei_data
    (box, *_), (obj, *_) = nuclei_boxes
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    res = segmenter.predict(points=[centre], labels=[1], box=box, multimask=True)
    assert res.masks.shape == (1, 3, *gt.shape) and res.scores.shape == (1, 3)
    assert res.logits.shape == (1, 3, 256, 256)
    best = res.mask(0)
    assert _iou(best, gt == obj) > 0.6
    # A mask prompt is answered in the window of the prediction it came from. (LiteMedSAM was trained
    # on boxes: its mask prompt keeps the object but does not sharpen it, so only that is asserted.)
    single = segmenter.predict(box=box)
    assert _iou(single.masks[0], gt == obj) > 0.6
    refined = segmenter.predict(points=[centre], labels=[1], box=box, mask_input=single)
    assert refined.windows[0] == single.windows[0]
    assert _iou(refined.masks[0], gt == obj) > 0.3


def test_clicks_find_their_nucleus_with_a_box_trained_model(segmenter, nuclei_data, nuclei_boxes):
    """LiteMedSAM answers raw clicks with IoU near 0; napari_sam.prediction.point_box turns a click into a
    box."""
    _, gt = nuclei_data
    _, ids = nuclei_boxes
    ious = []
    for obj in ids[:6]:
        rows, cols = np.nonzero(gt == obj)
        k = np.argmin(
            (rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2
        )  # a pixel of the nucleus near its middle
        res = segmenter.predict(points=[(rows[k], cols[k])])
        assert res.masks[0][rows[k], cols[k]]
        ious.append(_iou(res.masks[0], gt == obj))
    assert np.median(ious) >= 0.6


def test_commit_and_undo(segmenter, nuclei_boxes):
    box = nuclei_boxes[0][0]
    segmenter.predict(box=box)
    first = segmenter.commit()
    assert first == 1 and (segmenter.labels == 1).any()
    segmenter.predict(box=nuclei_boxes[0][1])
    assert segmenter.commit() == 2
    assert segmenter.undo() == 2 and not (segmenter.labels == 2).any()
    assert segmenter.undo() == 1 and segmenter.labels.max() == 0
    assert segmenter.undo() is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "at least one point or a box"),
        ({"points": [(1, 2, 3)]}, r"shape \(N, 2\)"),
        ({"points": [(1, 2)], "labels": [1, 0]}, "one 1/0 per point"),
        ({"points": [(1, 2)], "labels": [2]}, "1 \\(positive\\) or 0"),
        ({"box": (10, 10, 5, 20)}, "max < min"),
        ({"box": [(0, 0, 5, 5), (1, 1, 6, 6)], "points": [(2, 2)]}, "one object"),
    ],
)
def test_bad_prompts_are_refused(segmenter, kwargs, message):
    with pytest.raises(ValueError, match=message):
        segmenter.predict(**kwargs)


def test_predict_before_set_image_is_refused(lite_medsam):
    with pytest.raises(ValueError, match="set_image"):
        Segmenter(lite_medsam).predict(points=[(1, 1)])


def test_whole_image_answers_never_run_the_encoder(lite_medsam, nuclei_data, nuclei_boxes):
    """``zoom=False`` answers from the whole image's embedding (coarser, at once); the normal call encodes
    the zoom window, once: asking again decodes only."""
    _, gt = nuclei_data
    boxes, ids = nuclei_boxes
    seg = Segmenter(lite_medsam)
    seg.set_image(nuclei_data[0])
    encoded = seg.embeddings.encoded_count
    box = boxes[0]
    coarse = seg.predict(box=box, zoom=False)
    assert seg.embeddings.encoded_count == encoded
    assert coarse.windows[0].size == max(gt.shape)
    assert _iou(coarse.masks[0], gt == ids[0]) > 0.3
    assert not seg.embeddings.available(seg.window_for_box(box))
    full = seg.predict(box=box)  # encodes the zoom window
    assert seg.embeddings.encoded_count == encoded + 1 and full.windows[0].size < max(gt.shape)
    assert seg.embeddings.available(full.windows[0])
    again = seg.predict(box=box)
    assert seg.embeddings.encoded_count == encoded + 1
    assert np.array_equal(again.masks, full.masks) and np.allclose(again.scores, full.scores)
