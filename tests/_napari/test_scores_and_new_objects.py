"""The annotator's candidate score and what a click far from the previewed object does, in a real napari
viewer (Xvfb) with the real LiteMedSAM: "Candidate 2/3 · est. IoU 0.71" follows M; a click on another
nucleus commits the previewed one and starts a new object; a click whose mask dwarfs the committed
objects says so and suggests a box."""

from __future__ import annotations

import numpy as np
import pytest
from sam_napari_helpers import (
    PREDICT_TIMEOUT_MS,
    iou,
    ready_annotator,
    wait_preview,
)

from napari_sam.prediction.quality import candidate_scores

pytestmark = pytest.mark.gui


def _press(qtbot, viewer, key):
    from qtpy.QtCore import Qt

    canvas = viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    qtbot.keyClick(canvas, key, Qt.KeyboardModifier.NoModifier)


def _inner_point(truth, label) -> np.ndarray:
    """The pixel of ground-truth object ``label`` farthest from its border (where a user clicks)."""
    from scipy import ndimage as ndi

    dist = ndi.distance_transform_edt(np.pad(truth == label, 1))[1:-1, 1:-1]
    return np.array(np.unravel_index(np.argmax(dist), dist.shape), dtype=float)


def test_candidate_line_shows_each_candidates_score_while_cycling(
    make_napari_viewer, qtbot, lite_medsam, nuclei_data, artifacts_dir
):
    image, truth = nuclei_data
    widget = ready_annotator(make_napari_viewer, qtbot, lite_medsam, image)
    viewer = widget.viewer
    label = int(truth[212, 394])
    wait_preview(qtbot, widget, lambda: widget.points_layer.add(_inner_point(truth, label)))
    best = candidate_scores(widget.prediction, lite_medsam)[0]
    assert best.kind == "est. IoU"  # LiteMedSAM's IoU head is calibrated, not shown raw
    assert widget.candidate_label.text() == f"Candidate: best · {best.label}"
    assert best.value > 0.5  # a good mask no longer reads like a failure (the head says ~0.9 here)
    seen = []
    for m in range(3):  # M: candidate 1/3, 2/3, 3/3 with each one's own score
        with qtbot.waitSignal(widget.preview_updated, timeout=PREDICT_TIMEOUT_MS):
            _press(qtbot, viewer, "m")
        qtbot.waitUntil(lambda: not widget.previews.busy, timeout=PREDICT_TIMEOUT_MS)
        scores = candidate_scores(widget.prediction, lite_medsam)
        assert widget.prediction.num_candidates == 3
        assert widget.candidate_label.text() == f"Candidate {m + 1}/3 · {scores[m].label}"
        seen.append(scores[m].value)
        if m == 1:  # for docs/napari.md
            viewer.camera.center = (212, 394)
            viewer.camera.zoom = 4.0
            viewer.window._qt_window.resize(1300, 800)  # docs/images/ keeps the copy looked at
            viewer.screenshot(str(artifacts_dir / "napari_candidate_score.png"), canvas_only=False)
    raw = widget.prediction.scores[0]
    assert raw.max() < 0.3 and min(seen) > raw.max()  # the raw head's 0.18–0.26 is what the issue saw
    assert widget.candidate_label.toolTip().startswith("est. IoU:")


def test_far_click_commits_the_previewed_object_and_starts_a_new_one(
    make_napari_viewer, qtbot, lite_medsam, nuclei_data
):
    image, truth = nuclei_data
    widget = ready_annotator(make_napari_viewer, qtbot, lite_medsam, image)
    viewer = widget.viewer
    a, b = int(truth[212, 394]), int(truth[341, 163])
    pa, pb = _inner_point(truth, a), _inner_point(truth, b)
    wait_preview(qtbot, widget, lambda: widget.points_layer.add(pa))
    first = widget.preview_layer.data > 0
    # a second click on the same nucleus refines it: nothing is committed
    wait_preview(qtbot, widget, lambda: widget.points_layer.add(pa + (2, 1)))
    assert len(widget.points_layer.data) == 2 and not widget.objects_layer.data.any()
    first = widget.preview_layer.data > 0
    # a click on a nucleus far away: the preview is committed, the click alone prompts the new object
    with qtbot.waitSignal(widget.committed, timeout=PREDICT_TIMEOUT_MS) as committed:
        widget.points_layer.add(pb)
    assert committed.args == [[1]]
    np.testing.assert_array_equal(widget.objects_layer.data == 1, first)
    np.testing.assert_array_equal(widget.points_layer.data, [pb])
    qtbot.waitUntil(lambda: widget.prediction is not None and widget.refined, timeout=PREDICT_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not widget.previews.busy, timeout=PREDICT_TIMEOUT_MS)
    assert iou(widget.preview_layer.data > 0, truth == b) > 0.5
    assert widget.status.text().startswith(
        "Committed object 1; the click far from it started a new object (U undoes)."
    )
    _press(qtbot, viewer, "u")  # U undoes it, as the status says
    assert not widget.objects_layer.data.any()

    # three small objects committed from small boxes (parts of nuclei), then a click on a whole nucleus,
    # many times their size (a click searched at the nuclei's scale no longer spills over its
    # neighbours on this image: none of a 19 × 19 grid of clicks gave a mask over 4× the committed
    # nuclei's median, /tmp/s19/spill.py)
    widget.clear_prompts()
    for lab in (54, 32, 88):
        r, c = _inner_point(truth, lab)
        small = np.array([[r - 4, c - 4], [r + 4, c + 4]], dtype=float)
        wait_preview(qtbot, widget, lambda small=small: widget.shapes_layer.add_rectangles(small))
        with qtbot.waitSignal(widget.committed, timeout=PREDICT_TIMEOUT_MS):
            _press(qtbot, viewer, "c")
    median = np.median([o.area for o in widget.session.annotations.objects])
    wait_preview(qtbot, widget, lambda: widget.points_layer.add(_inner_point(truth, 49)))
    area = int((widget.preview_layer.data > 0).sum())
    assert area > 4 * median, (area, median)
    assert "draw a box around the object instead" in widget.status.text()
    assert f"{area:,} px" in widget.status.text()
