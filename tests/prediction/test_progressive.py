"""Progressive prediction (napari_sam.prediction.progressive) and the Segmenter's events, with the real
LiteMedSAM weights on the real nuclei image: the quick answer from the whole image, then the zoom
window's; the click → box search and the first answer computed once; cancellation; one encoder run
for a window two threads want."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import napari_sam.prediction.progressive as progressive_module
from napari_sam.embeddings.embedder import Cancelled
from napari_sam.prompts import Prompts
from napari_sam.segmenter import Segmenter


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _nucleus(gt: np.ndarray, skip: int = 0) -> int:
    ids, areas = np.unique(gt[gt > 0], return_counts=True)
    inner = []
    for i, a in sorted(zip(ids, areas), key=lambda t: -t[1]):
        rows, cols = np.nonzero(gt == i)
        if 250 <= a <= 900 and rows.min() > 20 and cols.min() > 20 and rows.max() < 490 and cols.max() < 490:
            inner.append(int(i))
    return inner[skip]


def _box(gt: np.ndarray, label: int) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(gt == label)
    return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())


def _centre(gt: np.ndarray, label: int) -> np.ndarray:
    inside = np.argwhere(gt == label)
    return inside[np.argmin(((inside - inside.mean(axis=0)) ** 2).sum(axis=1))].astype(float)


@pytest.fixture
def fresh(lite_medsam, nuclei_data):
    """A Segmenter on the nuclei with only the whole image embedded, decoder passes recorded."""
    seg = Segmenter(lite_medsam)
    seg.set_image(nuclei_data[0])
    decoded: list[tuple[int, int]] = []  # (window side, prompts in the pass)
    real = seg._decode_group

    def counting(window, boxes, *args, **kwargs):
        decoded.append((window.size, len(boxes)))
        return real(window, boxes, *args, **kwargs)

    seg._decode_group = counting
    seg.decoded = decoded
    return seg


def test_a_box_on_a_new_object_is_answered_quick_then_zoomed(fresh, nuclei_data):
    _, gt = nuclei_data
    label = _nucleus(gt)
    seg, encoded = fresh, fresh.embeddings.encoded_count
    stages = []
    seg.events.predicted.connect(stages.append)
    run = seg.predict_progressive(Prompts.build(boxes=[_box(gt, label)]))
    assert run.ready  # the quick answer needs only the whole image's embedding
    quick = next(run)
    assert not quick.final and quick.encoded == 0 and quick.prediction.windows[0].size == 512
    assert not run.ready and seg.embeddings.encoded_count == encoded  # the zoom window: not yet
    final = next(run)
    assert final.final and final.encoded == 1 and final.prediction.windows[0].size < 512
    assert list(run) == [] and run.done and not run.cancelled
    assert stages == [quick, final] and seg.last_prediction is final.prediction
    assert _iou(final.prediction.masks[0], gt == label) >= _iou(quick.prediction.masks[0], gt == label) - 0.05
    assert seg.decoded == [(512, 1), (final.prediction.windows[0].size, 1)]

    again = seg.predict_progressive(box=_box(gt, label))  # its window is embedded now: one final stage
    assert again.ready
    (only,) = list(again)
    assert only.final and only.encoded == 0
    assert np.array_equal(only.prediction.masks, final.prediction.masks)
    assert np.array_equal(seg.predict(box=_box(gt, label)).masks, final.prediction.masks)


def test_a_click_searches_its_box_once_for_both_answers(fresh, nuclei_data, monkeypatch):
    """LiteMedSAM turns a click into a box: one search, in the zoom window a nucleus of the image's
    typical size gets (not the whole 512² image, where it spans 8 model pixels); the box found is
    answered from its own zoom window: that same window (one stage), or another one, after a quick
    answer from the whole image."""
    _, gt = nuclei_data
    label = _nucleus(gt, skip=2)
    searches = []
    real_search = progressive_module.search_boxes
    monkeypatch.setattr(
        progressive_module, "search_boxes", lambda *a, **k: searches.append(a) or real_search(*a, **k)
    )
    seg, encoded = fresh, fresh.embeddings.encoded_count
    run = seg.predict_progressive(Prompts.build(points=[_centre(gt, label)]))
    assert not run.ready  # the search needs an encoder pass and decoder passes: not for a UI thread
    stages = list(run)
    assert len(searches) == 1 and stages[0].searched and not any(s.searched for s in stages[1:])
    searched = [size for size, n in seg.decoded if n > 1]
    assert len(searched) == 1 and 128 <= searched[0] < 512
    final = stages[-1].prediction.windows[0].size
    if final == searched[0]:
        assert [s.final for s in stages] == [True]
        assert seg.embeddings.encoded_count == encoded + 1
    else:
        assert [s.final for s in stages] == [False, True]
        assert stages[0].prediction.windows[0].size == 512 and final < 512
        assert seg.embeddings.encoded_count == encoded + 2
    assert _iou(stages[-1].prediction.masks[0], gt == label) >= 0.6


def test_cancel_stops_before_the_encoder(fresh, nuclei_data):
    _, gt = nuclei_data
    seg, encoded = fresh, fresh.embeddings.encoded_count
    run = seg.predict_progressive(box=_box(gt, _nucleus(gt, skip=3)))
    assert not next(run).final
    run.cancel()
    assert list(run) == [] and run.cancelled and run.final is None
    assert seg.embeddings.encoded_count == encoded
    with pytest.raises(Cancelled):
        run.result()
    stopped = seg.predict_progressive(box=_box(gt, _nucleus(gt, skip=4)), should_stop=lambda: True)
    assert list(stopped) == [] and stopped.cancelled


def test_two_threads_wanting_one_window_encode_it_once(fresh, nuclei_data):
    _, gt = nuclei_data
    seg, encoded = fresh, fresh.embeddings.encoded_count
    box = _box(gt, _nucleus(gt, skip=5))
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(seg.predict(box=box))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seg.embeddings.encoded_count == encoded + 1
    assert np.array_equal(answers[0].masks, answers[1].masks)


def test_events_and_commits_of_several_objects(fresh, nuclei_data):
    image, gt = nuclei_data
    seg = fresh
    seen = []
    for name in ("image_set", "committed", "undone", "annotations_replaced"):
        getattr(seg.events, name).connect(lambda *args, name=name: seen.append((name, *args)))
    labels = [_nucleus(gt, skip=k) for k in (6, 7)]
    pred = seg.predict(box=[_box(gt, lab) for lab in labels], zoom=False)
    ids = seg.commit_objects(pred, prompts=Prompts.build(boxes=[_box(gt, lab) for lab in labels]))
    assert ids == [1, 2] and seen == [("committed", [1, 2])]
    assert seg.annotations.objects[0].prompts["version"] == 2  # the one saved record
    with pytest.raises(ValueError, match="nothing committed"):
        seg.commit_objects(pred)  # every pixel taken already
    assert seg.undo() == 2 and seen[-1] == ("undone", 2)
    from napari_sam.annotations import Annotations

    with pytest.raises(ValueError, match="not this one's"):
        seg.annotations = Annotations((10, 10))
    seg.annotations = Annotations(gt.shape)
    assert seen[-1] == ("annotations_replaced",) and seg.labels.max() == 0
    seg.set_image(image[:128, :128], encode=False)
    assert seen[-2:] == [("image_set",), ("annotations_replaced",)]


def test_leading_axes_are_planes_of_one_stack(lite_medsam, nuclei_data):
    """A (T, Z, H, W) image: T·Z planes, addressed by (t, z) or by flat index (no encoder run here)."""
    image = nuclei_data[0][:64, :96]
    data = np.stack([np.stack([image + k for k in range(3)]) for _ in range(2)])  # (2, 3, 64, 96)
    seg = Segmenter(lite_medsam)
    planes = []
    seg.events.plane_changed.connect(planes.append)
    seg.set_image(data, plane_axes=2, plane=(1, 2), encode=False)
    assert seg.num_planes == 6 and seg.plane == 5 and seg.lead_shape == (2, 3)
    assert seg.labels.shape == (6, 64, 96) and seg.image_shape == (64, 96)
    assert seg.plane_index((0, 1)) == 1 and seg.plane_index(4) == 4
    seg.set_plane((1, 0), encode=False)
    assert seg.plane == 3 and planes == [3]
    with pytest.raises(ValueError, match="does not exist"):
        seg.plane_index((2, 0))
