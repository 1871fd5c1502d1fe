"""Refining an existing segmentation in the annotator, in a real napari viewer (under Xvfb) with the real
LiteMedSAM model on the stardist nuclei: a Labels layer whose nucleus was cut in half (as a poor earlier
segmentation would be) is used as the objects, E over the nucleus edits it, one real click on its
missing half corrects it, C commits it under its id, U restores the damaged nucleus exactly."""

from __future__ import annotations

import numpy as np
import pytest
from sam_napari_helpers import PREDICT_TIMEOUT_MS, iou, ready_annotator

pytestmark = pytest.mark.gui

NUCLEUS = 1  # a mid-sized ground-truth nucleus near (455, 418)


def _canvas_point(viewer, row: float, col: float):
    """The canvas widget position (a QPoint) that shows world (row, col)."""
    from qtpy.QtCore import QPoint

    canvas = viewer.window._qt_viewer.canvas
    x, y = canvas.view.scene.transform.map([col, row])[:2]
    return QPoint(int(round(x)), int(round(y)))


def test_a_half_cut_nucleus_is_repaired_with_one_click_under_its_id(
    make_napari_viewer, qtbot, lite_medsam, nuclei_data
):
    from qtpy.QtCore import Qt

    image, truth = nuclei_data
    gt = truth == NUCLEUS
    damaged = truth.copy()
    mid = int(np.median(np.nonzero(gt)[1]))
    cut = gt & (np.arange(truth.shape[1])[None, :] >= mid)
    damaged[cut] = 0
    missing = np.argwhere(cut)
    click = missing[np.argmin(((missing - missing.mean(axis=0)) ** 2).sum(axis=1))]

    widget = ready_annotator(make_napari_viewer, qtbot, lite_medsam, image)
    viewer = widget.viewer
    viewer.window._qt_window.resize(1200, 800)
    source = viewer.add_labels(damaged.astype(np.uint16), name="earlier segmentation")
    viewer.layers.selection.active = widget.points_layer
    # the Labels layer appears in the "Labels to refine" combo; the button makes it the objects
    assert widget.refine.labels_combo.findText("earlier segmentation") >= 0
    assert widget.refine.labels_combo.findText("nuclei SAM objects") < 0  # not the annotator's own
    widget.refine.labels_combo.setCurrentText("earlier segmentation")
    qtbot.mouseClick(widget.refine.load_btn, Qt.MouseButton.LeftButton)
    assert np.array_equal(widget.objects_layer.data, damaged) and not source.visible
    assert len(widget.session.annotations.objects) == len(np.unique(truth)) - 1
    assert "loaded" in widget.status.text()

    viewer.camera.center = (455, 418)
    viewer.camera.zoom = 6.0
    qtbot.wait(50)
    canvas = viewer.window._qt_viewer.canvas.native
    canvas.setFocus()

    # E with the mouse over the nucleus: its mask becomes the preview (and the mask prompt)
    inside = np.argwhere(damaged == NUCLEUS).mean(axis=0)
    qtbot.mouseMove(canvas, _canvas_point(viewer, *inside))
    qtbot.waitUntil(lambda: np.allclose(viewer.cursor.position[-2:], inside, atol=0.6), timeout=5000)
    with qtbot.waitSignal(widget.preview_updated, timeout=PREDICT_TIMEOUT_MS):
        qtbot.keyClick(canvas, "e")
    assert widget.refine.editing is not None and widget.refine.editing.refines == NUCLEUS
    assert np.array_equal(widget.preview_layer.data > 0, damaged == NUCLEUS)
    assert f"Editing object {NUCLEUS}" in widget.status.text()

    # one real click on the missing half corrects it
    with qtbot.waitSignal(widget.preview_updated, timeout=PREDICT_TIMEOUT_MS):
        qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=_canvas_point(viewer, *click))
    qtbot.waitUntil(lambda: not widget.previews.busy and widget.refined, timeout=PREDICT_TIMEOUT_MS)
    assert len(widget.points_layer.data) == 1
    assert np.allclose(widget.points_layer.data[0], click, atol=1.0)
    before = iou(damaged == NUCLEUS, gt)
    assert iou(widget.preview_layer.data > 0, gt) > before + 0.2
    assert widget.status.text().startswith(f"Editing object {NUCLEUS} (yellow outline): C commits it")
    viewer.screenshot(str(_images() / "napari_refine_labels.png"), canvas_only=False)

    # C commits it back under its id; the other objects are untouched
    with qtbot.waitSignal(widget.committed, timeout=PREDICT_TIMEOUT_MS) as committed:
        qtbot.keyClick(canvas, "c")
    assert committed.args == [[NUCLEUS]]
    after = iou(widget.objects_layer.data == NUCLEUS, gt)
    assert after > before + 0.2 and after >= 0.75
    changed = widget.objects_layer.data != damaged
    assert (
        changed.any()
        and ((widget.objects_layer.data[changed] == NUCLEUS) | (damaged[changed] == NUCLEUS)).all()
    )
    assert widget.session.annotations.objects[NUCLEUS - 1].prompts["refines"] == NUCLEUS
    assert widget.refine.editing is None and not widget.preview_layer.data.any()

    # U restores the damaged nucleus exactly
    qtbot.keyClick(canvas, "u")
    assert np.array_equal(widget.objects_layer.data, damaged)
    assert widget.status.text() == f"Removed object {NUCLEUS}." or str(NUCLEUS) in widget.status.text()


def _images():
    """Screenshots go to tests/_artifacts/ (docs/images/ keeps the copy looked at)."""
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "_artifacts"
    folder.mkdir(exist_ok=True)
    return folder
