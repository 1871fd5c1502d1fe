"""The one prompt type: its checks, the decoder rules, and ``Segmenter.predict`` taking it (real LiteMedSAM
on the nuclei sample). Its saved record: ``test_records.py``."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sam.prompts import Prompts


def _disk(shape, centre, radius):
    rr, cc = np.ogrid[: shape[0], : shape[1]]
    return (rr - centre[0]) ** 2 + (cc - centre[1]) ** 2 <= radius**2


# -- checks ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"points": [(1, 2, 3)]}, r"shape \(N, 2\)"),
        ({"points": [(1, float("nan"))]}, "NaN or inf"),
        ({"points": [("a", 2)]}, "must be numbers"),
        ({"points": [(1, 2)], "labels": [1, 0]}, "one 1/0 per point"),
        ({"labels": [1]}, "one 1/0 per point: 0 points, 1 labels"),
        ({"points": [(1, 2)], "labels": [2]}, r"1 \(positive\) or 0"),
        ({"points": [(1, 2)], "labels": [0.5]}, r"1 \(positive\) or 0"),
        ({"boxes": (10, 10, 5, 20)}, "max < min"),
        ({"boxes": [(0, 0, 5)]}, r"shape \(N, 4\)"),
        ({"boxes": [(0, 0, float("inf"), 5)]}, "NaN or inf"),
        ({"mask": np.zeros((4, 4), bool)}, "mask prompt is empty"),
        ({"mask": np.ones((2, 4, 4), bool)}, r"\(H, W\)"),
        ({"mask": np.full((4, 4), 3)}, "True/False"),
        ({"plane": (-1,)}, "integers >= 0"),
        ({"plane": "z"}, "plane"),
        ({"points": [(100, 5)], "image_shape": (100, 200)}, r"outside the image of shape \(100, 200\)"),
        ({"points": [(5, -0.6)], "image_shape": (100, 200)}, "outside the image"),
        ({"boxes": [(150, 0, 160, 5)], "image_shape": (100, 200)}, "outside the image"),
        ({"mask": np.ones((4, 4), bool), "image_shape": (5, 4)}, "does not match"),
    ],
)
def test_bad_prompts_are_refused_with_the_reason(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Prompts.build(**kwargs)


def test_canonical_arrays_whatever_the_input():
    p = Prompts.build(points=(3, 4), boxes=(1, 2, 3, 4), plane=2)
    assert p.points.shape == (1, 2) and p.points.dtype == np.float64
    assert p.labels.tolist() == [1] and p.labels.dtype == np.int8
    assert p.boxes.shape == (1, 4) and p.plane == (2,)
    q = Prompts.build(points=np.array([[3, 4], [5, 6]]), labels=np.array([True, False]))
    assert q.labels.tolist() == [1, 0] and q.positive_points.tolist() == [[3.0, 4.0]]
    with pytest.raises(ValueError, match="read-only"):
        q.points[0, 0] = 7  # frozen: the arrays too
    assert Prompts() == Prompts.build() and Prompts().is_empty and not q.is_empty


def test_boxes_past_the_edge_are_clipped_to_the_image():
    p = Prompts.build(boxes=[(-5, -5, 10, 1000)], image_shape=(100, 200))
    assert p.boxes.tolist() == [[0.0, 0.0, 10.0, 199.0]]
    inside = Prompts.build(points=[(0, 199.5)], boxes=[(0, 0, 99, 199)], image_shape=(100, 200))
    assert inside.on_image((100, 200)) is inside  # nothing to change


def test_editing_returns_new_prompts():
    p = Prompts().with_point(5, 6).with_point(7, 8, positive=False).with_box((1, 1, 9, 9))
    assert p.labels.tolist() == [1, 0] and len(p.boxes) == 1
    two = p.with_box((2, 2, 8, 8), replace=False)
    assert len(two.boxes) == 2 and len(p.boxes) == 1
    assert p.with_box((2, 2, 8, 8)).boxes.tolist() == [[2.0, 2.0, 8.0, 8.0]]
    mask = _disk((20, 20), (10, 10), 3)
    assert p.with_mask(mask).mask is not None and p.with_mask(mask).with_mask(None).mask is None
    cleared = p.on_plane((1, 2)).cleared()
    assert cleared.is_empty and cleared.plane == (1, 2)


def test_describe():
    p = Prompts.build(points=[(1, 2), (3, 4)], labels=[1, 0], boxes=[(0, 0, 5, 5)])
    assert p.describe() == "2 points (1 positive, 1 negative) + 1 box"
    assert Prompts.build(points=[(1, 2)]).describe() == "1 point (1 positive)"
    assert Prompts.build(boxes=[(0, 0, 5, 5), (1, 1, 6, 6)]).describe() == "2 boxes"
    mask = _disk((20, 20), (10, 10), 3)
    assert Prompts.build(mask=mask).describe() == f"drawn mask ({mask.sum()} pixels)"
    assert Prompts().describe() == "no prompts"


# -- what the decoder is asked --------------------------------------------------------------------
def test_decoder_rules():
    mask = _disk((20, 20), (10, 10), 3)
    drawn = Prompts.build(points=[(10, 10)], boxes=[(0, 0, 5, 5)], mask=mask).decoder_request()
    assert drawn.mask is mask or np.array_equal(drawn.mask, mask)
    assert drawn.boxes is None and drawn.points.tolist() == [[10.0, 10.0]]
    assert "rectangles are ignored" in drawn.note

    latest = Prompts.build(points=[(3, 3)], boxes=[(0, 0, 5, 5), (1, 1, 6, 6)]).decoder_request()
    assert latest.boxes.tolist() == [[1.0, 1.0, 6.0, 6.0]] and "latest of 2 rectangles" in latest.note

    several = Prompts.build(boxes=[(0, 0, 5, 5), (1, 1, 6, 6)]).decoder_request()
    assert len(several.boxes) == 2 and several.points is None and several.note == ""

    with pytest.raises(ValueError, match="at least one point or a box"):
        Prompts().decoder_request()
    with pytest.raises(ValueError, match="only negative points"):
        Prompts.build(points=[(1, 1)], labels=[0]).decoder_request()
    negative_in_box = Prompts.build(points=[(1, 1)], labels=[0], boxes=[(0, 0, 5, 5)]).decoder_request()
    assert negative_in_box.labels.tolist() == [0]
    with pytest.raises(ValueError, match="one object"):
        Prompts.build(points=[(3, 3)], boxes=[(0, 0, 5, 5), (1, 1, 6, 6)]).decoder_request(strict=True)
    with pytest.raises(ValueError, match="drawn mask"):
        Prompts.build(boxes=[(0, 0, 5, 5)], mask=mask).decoder_request(strict=True)


def test_several_rectangles_alone_are_objects_with_their_own_box():
    two = Prompts.build(boxes=[(0, 0, 5, 5), (1, 1, 6, 6)], plane=(3,))
    assert [p.boxes.tolist() for p in two.per_object()] == [[[0.0, 0.0, 5.0, 5.0]], [[1.0, 1.0, 6.0, 6.0]]]
    assert all(p.plane == (3,) and p.describe() == "1 box" for p in two.per_object())
    with_point = Prompts.build(points=[(3, 3)], boxes=[(0, 0, 5, 5), (1, 1, 6, 6)])
    assert with_point.per_object() == [with_point]


# -- Segmenter.predict takes it -------------------------------------------------------------------
@pytest.fixture(scope="module")
def segmenter(lite_medsam, nuclei_data):
    from napari_sam.segmenter import Segmenter

    seg = Segmenter(lite_medsam, zoom=False)
    seg.set_image(nuclei_data[0])
    return seg


def _box(truth, label):
    rows, cols = np.nonzero(truth == label)
    return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())


def test_predict_takes_prompts_as_keywords_do(segmenter, nuclei_data):
    _, truth = nuclei_data
    label = int(truth[212, 394])
    box = _box(truth, label)
    from_prompts = segmenter.predict(Prompts.build(boxes=[box]))
    from_keywords = segmenter.predict(box=box)
    np.testing.assert_array_equal(from_prompts.masks, from_keywords.masks)
    # with points, the latest rectangle (the front ends' rule); as keywords that is an error
    other = _box(truth, int(truth[341, 163]))
    centre = np.argwhere(truth == label).mean(axis=0)
    latest = segmenter.predict(Prompts.build(points=[centre], boxes=[other, box]))
    one = segmenter.predict(Prompts.build(points=[centre], boxes=[box]))
    np.testing.assert_array_equal(latest.masks, one.masks)
    with pytest.raises(ValueError, match="one object"):
        segmenter.predict(points=[centre], box=[other, box])
    with pytest.raises(ValueError, match="not both"):
        segmenter.predict(Prompts.build(boxes=[box]), box=box)
    with pytest.raises(ValueError, match="outside the image"):
        segmenter.predict(Prompts.build(points=[(600, 5)]))


def test_a_drawn_mask_is_decoded_as_its_box_and_logits(segmenter, nuclei_data):
    _, truth = nuclei_data
    label = int(truth[341, 163])
    drawn = truth == label
    pred = segmenter.predict(Prompts.build(mask=drawn, boxes=[(0, 0, 5, 5)]))  # the rectangle is ignored
    mask = pred.masks[0]
    assert pred.scores.shape[0] == 1
    assert (mask & drawn).sum() / (mask | drawn).sum() >= 0.7
    np.testing.assert_array_equal(segmenter.predict(Prompts.build(mask=drawn)).masks, pred.masks)
