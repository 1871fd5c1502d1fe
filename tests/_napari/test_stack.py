"""The annotator on a plane of a 3D stack with a non-trivial layer transform, and propagation."""

from __future__ import annotations

import numpy as np
import pytest
from sam_napari_helpers import ENCODE_TIMEOUT_MS, compute, dock_annotator, iou, object_box, wait_preview

pytestmark = pytest.mark.gui


def test_plane_of_a_scaled_stack_and_propagation(make_napari_viewer, qtbot, lite_medsam, artifacts_dir):
    from napari_sam.io.samples import nuclei_stack

    stack, truth = nuclei_stack(3)
    viewer = make_napari_viewer(show=True)
    viewer.add_image(stack, name="stack", scale=(4.0, 0.5, 0.5), translate=(10.0, 100.0, -50.0))
    viewer.dims.set_point(0, 10.0 + 4.0 * 2)  # world z of plane 2
    widget = dock_annotator(viewer, lite_medsam)
    compute(qtbot, widget)
    assert widget.session.is_ready((2,)) and not widget.session.is_ready((0,))
    assert widget.points_layer.ndim == 3 and np.allclose(widget.shapes_layer.scale, (4.0, 0.5, 0.5))

    label = int(truth[2, 214, 393])
    r0, c0, r1, c1 = object_box(truth[2], label)
    # the Shapes layer shares the image's transform: its data coordinates are image pixels
    rect = np.array([[2, r0, c0], [2, r0, c1], [2, r1, c1], [2, r1, c0]], dtype=float)
    wait_preview(qtbot, widget, lambda: widget.shapes_layer.add_rectangles(rect))
    preview = widget.preview_layer.data
    assert not preview[:2].any()
    assert iou(preview[2] > 0, truth[2] == label) >= 0.7
    viewer.screenshot(str(artifacts_dir / "stack_plane2_preview.png"), canvas_only=True)

    # follow the object through planes 1 and 0 (embedded on demand) and commit it on each plane
    widget.propagate()
    qtbot.waitUntil(lambda: widget._propagate_relay is None, timeout=3 * ENCODE_TIMEOUT_MS)
    objects = widget.objects_layer.data
    assert objects.shape == stack.shape
    (record,) = widget.session.annotations.objects  # one object with one id on every plane it covers
    assert record.plane == 2 and 2 in record.planes and len(record.planes) >= 2
    assert sorted(np.nonzero((objects == record.id).any(axis=(1, 2)))[0].tolist()) == record.planes
    assert not widget.preview_layer.data.any() and len(widget.shapes_layer.data) == 0
    for z in record.planes:  # where the core's propagation found the object, it is that nucleus
        assert iou(objects[z] == record.id, truth[z] == label) >= (0.7 if z == 2 else 0.6)
    assert f"Object {record.id} committed on {len(record.planes)} planes" in widget.status.text()
    assert widget.undo() == record.id and not widget.objects_layer.data.any()
