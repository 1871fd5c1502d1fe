"""Correcting an existing segmentation (napari_sam.prediction.refine) with the real LiteMedSAM weights on
the real nuclei: ground-truth nuclei cut in half, loaded as committed objects, each corrected with one
click in its missing half; the id is kept, one undo restores the damaged object exactly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from napari_sam.geometry.coords import mask_bbox
from napari_sam.prediction.refine import refine_request
from napari_sam.segmenter import Segmenter


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _half_cut(truth: np.ndarray, labels: list[int]) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """``truth`` with the right half of each of ``labels`` removed; the click (row, col) at the centre of
    each removed half."""
    damaged, clicks = truth.copy(), {}
    cols = np.arange(truth.shape[1])[None, :]
    for lab in labels:
        gt = truth == lab
        mid = int(np.median(np.nonzero(gt)[1]))
        cut = gt & (cols >= mid)
        damaged[cut] = 0
        missing = np.argwhere(cut)
        clicks[lab] = missing[np.argmin(((missing - missing.mean(axis=0)) ** 2).sum(axis=1))].astype(float)
    return damaged, clicks


@pytest.fixture(scope="module")
def segmenter(lite_medsam, nuclei_data):
    seg = Segmenter(lite_medsam)
    seg.set_image(nuclei_data[0])
    return seg


NUCLEI = [1, 3, 6]  # mid-sized ground-truth nuclei (250-900 pixels)


def test_one_click_repairs_a_half_cut_nucleus_under_its_id(segmenter, nuclei_data):
    _, truth = nuclei_data
    damaged, clicks = _half_cut(truth, NUCLEI)
    seg = segmenter
    seg.load_labels(damaged)
    assert (
        len(seg.annotations.objects) == len(np.unique(truth)) - 1
        and seg.annotations.next_id == truth.max() + 1
    )
    before, after = [], []
    for lab in NUCLEI:
        start = seg.refine_prompts(lab)
        encoded = seg.embeddings.encoded_count
        itself = seg.predict(start)  # editing starts from the object's own mask, no model run
        assert np.array_equal(itself.masks[0], damaged == lab) and seg.embeddings.encoded_count == encoded
        prompts = start.with_point(*clicks[lab])
        answer = seg.predict(prompts)
        assert seg.commit_objects(answer, prompts=prompts) == [lab]
        before.append(_iou(damaged == lab, truth == lab))
        after.append(_iou(seg.labels == lab, truth == lab))
        assert after[-1] > before[-1] + 0.15, (lab, before[-1], after[-1])
    assert np.mean(after) >= 0.75, after
    record = next(o for o in seg.annotations.objects if o.id == NUCLEI[-1]).prompts
    assert record["refines"] == NUCLEI[-1] and len(record["points"]) == 1
    # the other objects are untouched
    others = ~np.isin(truth, NUCLEI) & ~np.isin(seg.labels, NUCLEI)
    assert np.array_equal(seg.labels[others], damaged[others])
    # one undo per correction, newest first, each restoring the damaged object exactly
    for lab in reversed(NUCLEI):
        assert seg.undo() == lab
    assert np.array_equal(seg.labels, damaged)
    assert seg.undo() is None


def test_a_box_is_the_objects_new_box_and_committing_it_unchanged_changes_nothing(segmenter, nuclei_data):
    _, truth = nuclei_data
    damaged, _ = _half_cut(truth, [NUCLEI[0]])
    seg = segmenter
    seg.load_labels(damaged)
    lab = NUCLEI[0]
    start = seg.refine_prompts(lab)
    assert seg.commit_objects(seg.predict(start), prompts=start) == [lab]
    assert np.array_equal(seg.labels, damaged)
    rows, cols = np.nonzero(truth == lab)
    box = (rows.min(), cols.min(), rows.max(), cols.max())
    answer = seg.predict(start.with_box(box))
    assert _iou(answer.masks[0], truth == lab) > _iou(damaged == lab, truth == lab) + 0.2
    with pytest.raises(ValueError, match="no committed object 99999"):
        seg.refine_prompts(99999)
    assert seg.object_at(*np.argwhere(damaged == lab)[0]) == lab and seg.object_at(-5, 3) == 0


def test_a_point_trained_model_gets_the_mask_and_a_box_grown_to_the_click(segmenter, nuclei_data):
    """The other rule (models not trained on boxes only): the object's mask as the mask prompt, in the
    window of its box grown to hold the click (checked on the request; LiteMedSAM itself is box-trained)."""
    _, truth = nuclei_data
    damaged, clicks = _half_cut(truth, [NUCLEI[1]])
    seg = segmenter
    seg.load_labels(damaged)
    lab = NUCLEI[1]
    asked = seg.refine_prompts(lab).with_point(*clicks[lab]).decoder_request()
    boxed = refine_request(seg, asked)
    assert boxed.boxes is None and boxed.grow_from == mask_bbox(damaged == lab)  # searched, then grown
    point_model = dataclasses.replace(
        seg.model, spec=dataclasses.replace(seg.model.spec, box_prompts_only=False)
    )
    seg.model, kept = point_model, seg.model
    try:
        req = refine_request(seg, asked)
    finally:
        seg.model = kept
    r0, c0, r1, c1 = req.boxes[0]
    row, col = clicks[lab]
    assert r0 <= row <= r1 and c0 <= col <= c1 and req.mask_input is not None
    assert req.mask_input.windows[0].contains_box(tuple(req.boxes[0]))
