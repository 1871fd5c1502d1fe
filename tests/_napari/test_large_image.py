"""The annotator on an image larger than the model's input: embedded as tiles (with the progress bar),
then boxes and clicks anywhere answered from a zoom window, with a tile's answer meanwhile."""

from __future__ import annotations

import numpy as np
import pytest
from sam_napari_helpers import PREDICT_TIMEOUT_MS, compute, dock_annotator, iou, object_box, wait_preview

pytestmark = pytest.mark.gui


def _crosses_a_seam(grid, box) -> bool:
    r0, c0, r1, c1 = box
    t = grid.tile_at((r0 + r1) / 2, (c0 + c1) / 2)
    cr0, cc0, cr1, cc1 = grid.core(t)
    return not (cr0 <= r0 and cc0 <= c0 and r1 < cr1 and c1 < cc1)


def test_tiled_image_boxes_and_clicks(make_napari_viewer, qtbot, lite_medsam, nuclei_data):
    image, truth = nuclei_data
    pad = ((64, 64), (44, 44))  # 640 × 600: more than twice LiteMedSAM's 256 input, so tiled
    big, big_truth = np.pad(image, pad, mode="reflect"), np.pad(truth, pad, mode="constant")
    viewer = make_napari_viewer(show=True)
    viewer.add_image(big, name="big", translate=(5.0, -7.0))
    widget = dock_annotator(viewer, lite_medsam)
    widget.image_combo.setCurrentText("big")
    compute(qtbot, widget)
    seg = widget.session.segmenter
    assert not seg.grid.is_single and len(seg.grid) == 9
    qtbot.waitUntil(lambda: not widget.background.running, timeout=PREDICT_TIMEOUT_MS)  # the rest, behind
    assert widget.background.label.text() == "All 9 tiles embedded."
    assert seg.embeddings.pending_tiles(0) == [] and seg.embeddings.encoded_count == 9

    ids, areas = np.unique(big_truth[big_truth > 0], return_counts=True)
    boxes = {int(i): object_box(big_truth, i) for i in ids[(areas > 250) & (areas < 900)]}
    seam = next(i for i, b in boxes.items() if _crosses_a_seam(seg.grid, b))
    inner = next(i for i, b in boxes.items() if not _crosses_a_seam(seg.grid, b))
    for label in (inner, seam):
        shown = []
        widget.preview_updated.connect(shown.append)
        r0, c0, r1, c1 = boxes[label]
        rect = np.array([[r0, c0], [r1, c1]], dtype=float)  # the shapes layer's data: image pixels
        wait_preview(qtbot, widget, lambda: widget.shapes_layer.add_rectangles(rect))
        widget.preview_updated.disconnect(shown.append)
        if label == inner:  # the tile's answer at once, then the zoom window's
            assert shown[0].windows[0] == seg.grid.tile(seg.grid.tile_at((r0 + r1) / 2, (c0 + c1) / 2))
        assert shown[-1].windows[0].size < seg.grid.tile_size
        assert iou(widget.preview_layer.data > 0, big_truth == label) >= 0.7, label
        assert widget.commit()
    assert [o.id for o in widget.session.annotations.objects] == [1, 2]
    assert iou(widget.objects_layer.data == 2, big_truth == seam) >= 0.7

    inside = np.argwhere(big_truth == inner)
    centre = inside[np.argmin(((inside - inside.mean(axis=0)) ** 2).sum(axis=1))]
    assert widget.undo() == 2 and widget.undo() == 1
    # a click: LiteMedSAM's box search runs in a worker on the tile holding it. On full-resolution tiles
    # it often settles on too small a box (mean IoU 0.48 on 40 nuclei, docs/core.md), so check that what
    # is shown lies on the clicked nucleus, not its whole extent
    widget.points_layer.add(centre)
    assert widget.previews.worker is not None and widget.prediction is None
    qtbot.waitUntil(
        lambda: widget.previews.worker is None and widget.prediction is not None, timeout=PREDICT_TIMEOUT_MS
    )
    preview = widget.preview_layer.data > 0
    assert preview[tuple(centre)] and (preview & (big_truth == inner)).sum() >= 0.8 * preview.sum()


def test_large_image_is_prompted_before_it_is_embedded(make_napari_viewer, qtbot, lite_medsam, nuclei_data):
    """Issue 13 item 1 in napari: Compute returns without an encoder pass; the tiles in view are embedded
    first in the background with progress in the dock; a box elsewhere is answered from its own window
    at once; Stop keeps the finished tiles and Compute resumes."""
    image, truth = nuclei_data
    pad = ((64, 64), (44, 44))
    big, big_truth = np.pad(image, pad, mode="reflect"), np.pad(truth, pad, mode="constant")
    viewer = make_napari_viewer(show=True)
    viewer.add_image(big, name="big")
    widget = dock_annotator(viewer, lite_medsam)
    qtbot.wait(500)  # the dock resets the view once shown
    viewer.camera.center = (0.0, 600.0, 560.0)  # look at the bottom-right corner, zoomed in
    viewer.camera.zoom = 8.0
    widget.image_combo.setCurrentText("big")
    compute(qtbot, widget)
    seg = widget.session.segmenter
    assert widget.session.is_tiled and "in the background" in widget.status.text()
    corner = seg.grid.tile_at(600, 560)
    qtbot.waitUntil(lambda: seg.store.is_done(0, corner), timeout=PREDICT_TIMEOUT_MS)
    assert seg.store.count_done() <= 3  # the tile in view came first
    assert widget.background.isVisible() and "tiles" in widget.background.label.text()

    # a box far from the view, on tiles not embedded yet: answered from its own window meanwhile
    ids, areas = np.unique(big_truth[big_truth > 0], return_counts=True)
    far = [int(i) for i in ids[(areas > 250) & (areas < 900)] if object_box(big_truth, i)[0] < 250]
    label = far[0]
    r0, c0, r1, c1 = object_box(big_truth, label)
    wait_preview(qtbot, widget, lambda: widget.shapes_layer.add_rectangles(np.array([[r0, c0], [r1, c1]])))
    assert iou(widget.preview_layer.data > 0, big_truth == label) >= 0.7

    widget.background.stop_btn.click()  # Stop: finished tiles kept
    kept = seg.store.count_done()
    assert not widget.background.running and "kept" in widget.background.label.text()
    assert 1 <= kept < 9
    widget.compute_btn.click()  # resumes the same session's background embedding
    assert widget.session.segmenter is seg and widget.background.running
    qtbot.waitUntil(lambda: not widget.background.running, timeout=PREDICT_TIMEOUT_MS)
    assert seg.embeddings.pending_tiles(0) == []
    assert widget.background.label.text() == "All 9 tiles embedded."
