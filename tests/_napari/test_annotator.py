"""The annotator in a real napari viewer (under Xvfb) with the real LiteMedSAM model."""
from __future__ import annotations

import numpy as np
import pytest
from sam_napari_helpers import compute, dock_annotator, iou, object_box, wait_preview

pytestmark = pytest.mark.gui


def test_point_and_box_on_a_nucleus_commit_and_undo(make_napari_viewer, qtbot, lite_medsam, nuclei_data,
                                                    artifacts_dir):
    image, truth = nuclei_data
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-sam", "nuclei")
    assert viewer.layers["nuclei"].data.shape == image.shape
    widget = dock_annotator(viewer, lite_medsam)
    widget.image_combo.setCurrentText("nuclei")
    compute(qtbot, widget)
    assert widget.points_layer is not None and widget.session.is_ready(())

    # A nucleus where LiteMedSAM answers a box + centre point well: the box-trained model is often
    # hurt by an extra point (mean IoU 0.63 with vs 0.86 without over 20 nuclei), so the point-only
    # and box-only previews are checked too.
    label = int(truth[212, 394])
    r0, c0, r1, c1 = object_box(truth, label)
    inside = np.argwhere(truth == label)
    centre = inside[np.argmin(((inside - inside.mean(axis=0)) ** 2).sum(axis=1))]
    wait_preview(qtbot, widget, lambda: widget.points_layer.add(centre))
    assert widget.prediction is not None  # point-only answered (LiteMedSAM's point-only masks are poor)
    wait_preview(qtbot, widget, lambda: widget.shapes_layer.add_rectangles(
        np.array([[r0, c0], [r1, c1]], dtype=float)))
    assert iou(widget.preview_layer.data > 0, truth == label) >= 0.7
    viewer.screenshot(str(artifacts_dir / "annotator_preview.png"), canvas_only=False)
    point_and_box = widget.preview_layer.data.copy()

    widget.points_layer.selected_data = {0}
    wait_preview(qtbot, widget, widget.points_layer.remove_selected)  # box only
    assert iou(widget.preview_layer.data > 0, truth == label) >= 0.8
    widget.points_layer.add(centre)
    qtbot.waitUntil(lambda: np.array_equal(widget.preview_layer.data, point_and_box), timeout=60_000)

    ids = widget.commit()
    assert ids == [1]
    objects = widget.objects_layer.data
    assert iou(objects == 1, truth == label) >= 0.7
    assert len(widget.points_layer.data) == 0 and len(widget.shapes_layer.data) == 0
    assert not widget.preview_layer.data.any()
    viewer.screenshot(str(artifacts_dir / "annotator_committed.png"), canvas_only=False)

    assert widget.undo() == 1
    assert not widget.objects_layer.data.any()
    assert widget.undo() is None
