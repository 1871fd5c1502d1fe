"""SamWidget's Python side with the real model, no browser: prompts in, binary masks out, commit/undo,
the shared session, save/load. Messages the browser would get are recorded from ``send``."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sam.annotations import Annotations
from napari_sam.geometry.coords import mask_bbox
from napari_sam.io.samples import nuclei
from napari_sam.prediction.quality import candidate_scores
from sam_widgets import SamWidget
from sam_widgets._messages import unpack_mask


class Recorder:
    """Keeps what the widget sends to the browser (header, buffers)."""

    def __init__(self, widget: SamWidget) -> None:
        self.sent: list[tuple[dict, list]] = []
        self._send = widget.send
        widget.send = self

    def __call__(self, content, buffers=None):
        self.sent.append((content, list(buffers or [])))
        return self._send(content, buffers)

    def of_type(self, kind: str) -> list[tuple[dict, list]]:
        return [m for m in self.sent if m[0]["type"] == kind]


@pytest.fixture(scope="module")
def data():
    image, gt = nuclei()
    ids, areas = np.unique(gt, return_counts=True)
    big = [i for i, a in sorted(zip(ids[1:], areas[1:]), key=lambda t: -t[1])]
    return image, gt, big


@pytest.fixture(scope="module")
def session(data, lite_medsam):
    """One widget (whole-image answers, so prompts cost a decoder call only) shared by the tests here."""
    return SamWidget(data[0], model=lite_medsam, zoom=False, progress=False)


@pytest.fixture
def widget(session):
    session.clear_prompts()
    while session.annotations.objects:
        session.undo()
    return session


def test_widget_state_after_embedding(widget, data):
    assert widget.image_shape == [512, 512] and widget.channels == 1 and widget.max_level == 1
    assert widget.num_planes == 1 and widget.plane == 0 and widget.error == ""
    assert widget.auto_limits[0] < widget.auto_limits[1]
    assert widget.labels.shape == (512, 512) and widget.labels.dtype == np.int32


def test_box_prompt_sends_three_candidates_as_bits(widget, data):
    _, gt, big = data
    rec = Recorder(widget)
    box = mask_bbox(gt == big[0])
    pred = widget.set_box(box)
    assert pred is widget.prediction and pred.num_candidates == 3
    header, buffers = rec.of_type("prediction")[-1]
    assert len(header["candidates"]) == 3 and header["selected"] == widget.candidate == pred.best_index(0)
    for m, cand in enumerate(header["candidates"]):
        np.testing.assert_array_equal(unpack_mask(cand, buffers[m], (512, 512)), pred.mask(0, m))
        assert len(buffers[m]) <= (cand["h"] * cand["w"] + 7) // 8
    shown = candidate_scores(pred, widget.segmenter.model)  # LiteMedSAM: estimated IoU, not its raw head
    assert widget.scores == pytest.approx([s.value for s in shown]) and widget.score_kind == "est. IoU"
    assert widget.status.startswith(f"mask {widget.candidate + 1}/3: {shown[widget.candidate].label}")
    assert widget.mask.sum() > 0


def test_browser_prompt_and_commit_messages(widget, data):
    """The path the canvas uses: the prompt trait synced from the browser, then a 'commit' message."""
    _, gt, big = data
    target = gt == big[1]
    r, c = np.argwhere(target).mean(axis=0)
    version = widget.labels_version
    widget.set_state({"prompt": {"points": [[float(r), float(c), 1]], "box": list(mask_bbox(target))}})
    assert widget.prediction is not None
    widget.set_state({"candidate": 0})
    assert widget.status.startswith("mask 1/3")
    expected = widget.prediction.mask(0, 0)
    widget._on_message(widget, {"type": "commit"}, [])
    assert widget.num_objects == 1 and widget.labels_version > version
    np.testing.assert_array_equal(widget.labels == 1, expected)
    assert widget.prompt == {"points": [], "box": None} and widget.prediction is None
    table = widget.table()
    assert list(table.index) == [1] and table.loc[1, "area"] == expected.sum()
    assert table.loc[1, "prompts"] == "1 point (1 positive) + 1 box"
    assert widget.objects[0]["prompts"]["boxes"] == [list(map(float, mask_bbox(target)))]
    assert widget.objects[0]["prompts"]["version"] == 2
    iou = (expected & target).sum() / (expected | target).sum()
    assert iou > 0.5
    widget._on_message(widget, {"type": "undo"}, [])
    assert widget.num_objects == 0 and not widget.labels.any()


def test_a_new_object_gets_a_quick_mask_then_the_zoomed_one(widget, data):
    """With the zoom rule on, a box on a new object is answered twice: the whole image's mask at once
    (marked not final, the status says it is being refined), then the zoom window's."""
    from napari_sam.geometry.windows import ZoomRule

    _, gt, big = data
    seg = widget.segmenter
    before = seg.zoom
    seg.zoom = ZoomRule()
    try:
        rec = Recorder(widget)
        statuses = []
        widget.observe(lambda change: statuses.append(change["new"]), names="status")
        pred = widget.set_box(mask_bbox(gt == big[4]))
    finally:
        seg.zoom = before
    headers = [h for h, _ in rec.of_type("prediction")]
    assert [h["final"] for h in headers] == [False, True]
    assert any("refining" in s for s in statuses) and widget.status.startswith("mask")
    assert pred is widget.prediction and pred.windows[0].size < 512
    target = gt == big[4]
    assert (pred.mask(0) & target).sum() / (pred.mask(0) | target).sum() > 0.6


def test_tiles_on_request_carry_committed_labels(widget, data):
    _, gt, big = data
    rec = Recorder(widget)
    widget.segment(box=mask_bbox(gt == big[2]))
    widget.commit()
    widget._on_message(widget, {"type": "tiles", "kind": "labels", "gen": 5, "keys": [[1, 0, 0]]}, [])
    widget._on_message(widget, {"type": "tiles", "kind": "image", "gen": 2, "keys": [[0, 1, 1]]}, [])
    (lab_header, lab_buf), (img_header, img_buf) = rec.of_type("tile")[-2:]
    assert lab_header["gen"] == 5 and not lab_header["empty"]
    tile = np.frombuffer(lab_buf[0], "<i4").reshape(256, 256)
    np.testing.assert_array_equal(tile, widget.labels[::2, ::2])
    assert img_header["c"] == 1 and len(img_buf[0]) == 256 * 256


def test_image_tiles_use_the_contrast_limits_the_browser_asks_for(widget):
    """A tile request names its limits: the browser's contrast_limits update may reach the kernel after
    it (ipywidgets holds state updates back while an earlier one is pending)."""
    rec = Recorder(widget)
    assert widget.contrast_limits is None
    ask = {"type": "tiles", "kind": "image", "gen": 3, "keys": [[0, 0, 0]]}
    widget._on_message(widget, ask, [])
    widget._on_message(widget, {**ask, "contrast_limits": [0.0, 10.0]}, [])
    widget._on_message(widget, {**ask, "contrast_limits": None}, [])
    auto, narrow, again = (np.frombuffer(m[1][0], np.uint8) for m in rec.of_type("tile")[-3:])
    assert narrow.mean() > auto.mean() + 20  # a narrow window brightens the image
    np.testing.assert_array_equal(again, auto)
    widget._on_message(widget, {**ask, "contrast_limits": [5, 1]}, [])
    assert "high > low" in widget.error


def test_user_errors_are_clear(widget):
    with pytest.raises(ValueError, match="nothing to commit"):
        widget.commit()
    widget._on_message(widget, {"type": "commit"}, [])  # from the browser: shown, not raised
    assert "nothing to commit" in widget.error
    with pytest.raises(ValueError, match="outside the image"):
        widget.add_point(600, 10)
    with pytest.raises(ValueError, match="one 1/0 per point"):
        widget.segment(points=[(1, 2), (3, 4)], labels=[1])
    with pytest.raises(ValueError, match="high > low"):
        widget.contrast_limits = (5, 1)
    widget.contrast_limits = (10, 100)  # raw units; tiles are cut with them
    assert widget.contrast_limits == [10.0, 100.0]
    widget.contrast_limits = None  # back to the image's own scaling
    with pytest.raises(ValueError, match="plane 3 does not exist"):
        widget.plane = 3
    assert widget.undo() is None and widget.status == "nothing to undo"


def test_shared_session_and_save_load(widget, data, tmp_path):
    image, gt, big = data
    seg = widget.segmenter
    encoded = seg.embeddings.encoded_count
    other = SamWidget(segmenter=seg, progress=False)  # continue the same session: nothing re-embedded
    assert seg.embeddings.encoded_count == encoded
    obj = seg.commit(seg.predict(box=mask_bbox(gt == big[3])))  # committed from Python / napari
    assert other.num_objects == widget.num_objects == 1 and other.labels[gt == big[3]].max() == obj
    folder = widget.save(tmp_path / "nuclei.annotations")
    restored = Annotations.load(folder)
    np.testing.assert_array_equal(restored.labels, widget.labels)
    widget.undo()
    widget.load(folder)
    assert widget.num_objects == 1 and widget.annotations is seg.annotations
    assert len(other.objects) == other.num_objects == 1  # both views follow the session's annotations
    seg.annotations = Annotations((512, 512))  # replaced behind the widgets' backs (as napari may do)
    assert widget.table().shape[0] == 0 and widget.num_objects == 0
    other.load(restored)
    assert other.table().shape[0] == len(widget.objects) == widget.num_objects == 1
    with pytest.raises(ValueError, match="not this one's"):
        widget.load(Annotations((10, 10)))


def test_constructor_checks_its_arguments():
    with pytest.raises(ValueError, match="give an image"):
        SamWidget()
    with pytest.raises(ValueError, match="napari_sam.Segmenter"):
        SamWidget(np.zeros((4, 4)), segmenter="lite_medsam")


@pytest.mark.slow
def test_stack_planes(data, lite_medsam):
    """A (P, H, W) stack: a plane slider, prompts and commits on the plane in view."""
    image, _, _ = data
    stack = np.stack([image[:256, :256], image[256:, 256:]])
    w = SamWidget(stack, model=lite_medsam, stack_axis=0, zoom=False, progress=False)
    assert w.num_planes == 2 and w.image_shape == [256, 256] and w.labels.shape == (2, 256, 256)
    rec = Recorder(w)
    w.plane = 1
    w._on_message(w, {"type": "tiles", "kind": "image", "gen": 1, "keys": [[0, 0, 0]]}, [])
    header, buf = rec.of_type("tile")[-1]
    np.testing.assert_array_equal(
        np.frombuffer(buf[0], np.uint8).reshape(256, 256), w._tiles.image_tile(0, 0, 0)
    )
    w.segment(box=(100, 100, 130, 130))
    w.commit()
    assert w.labels[1].any() and not w.labels[0].any()
    assert w.table().loc[1, "plane"] == 1
