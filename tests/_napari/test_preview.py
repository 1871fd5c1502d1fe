"""Where previews are predicted (napari_sam._napari._preview), in a real viewer with the real model:
at once on the main thread when the embeddings are in memory, a coarse answer then the zoomed one for a
new object, box searches for clicks in a worker, late answers dropped."""

from __future__ import annotations

import numpy as np
import pytest
from sam_napari_helpers import (
    PREDICT_TIMEOUT_MS,
    iou,
    object_rect,
    pick_nucleus,
    ready_annotator,
    record_previews,
)

pytestmark = pytest.mark.gui


def test_previews_come_at_once_then_sharpen(make_napari_viewer, qtbot, lite_medsam, nuclei_data):
    """With the embeddings in memory a prompt is answered on the main thread, inside the layer edit
    (no worker, no frame in between). The first prompt on an object, whose zoom window is not embedded
    yet, shows the whole image's answer at once and the zoom window's answer when its worker is done;
    a worker's answer that arrives after the prompts were cleared is dropped."""
    image, truth = nuclei_data
    widget = ready_annotator(make_napari_viewer, qtbot, lite_medsam, image)
    shown = record_previews(widget)

    label = pick_nucleus(truth)
    widget.shapes_layer.add_rectangles(object_rect(truth, label))
    assert len(shown) == 1  # painted before add_rectangles returned
    first, how = shown[0]
    assert how["inline"] and how["coarse"] and first.windows[0].size == max(image.shape)
    assert iou(widget.preview_layer.data > 0, truth == label) >= 0.3
    assert widget.previews.worker is not None  # the zoom window is being embedded
    qtbot.waitUntil(lambda: widget.previews.worker is None, timeout=PREDICT_TIMEOUT_MS)
    refined, how = shown[-1]
    assert len(shown) == 2 and not how["inline"] and not how["coarse"]
    assert refined.windows[0].size < max(image.shape)
    assert iou(widget.preview_layer.data > 0, truth == label) >= 0.7

    rows, cols = np.nonzero(truth == label)
    widget.points_layer.add([rows.mean(), cols.mean()])  # same object, same window: answered inline
    assert len(shown) == 3 and shown[2][1]["inline"] and not shown[2][1]["coarse"]
    assert widget.previews.worker is None
    assert iou(widget.preview_layer.data > 0, truth == label) >= 0.7

    other = pick_nucleus(truth, skip=4)
    widget.shapes_layer.add_rectangles(object_rect(truth, other))  # a new object: its window goes to a worker
    assert widget.previews.worker is not None
    widget.clear_prompts()
    qtbot.waitUntil(lambda: widget.previews.worker is None, timeout=PREDICT_TIMEOUT_MS)
    assert widget.prediction is None and not widget.preview_layer.data.any()


def test_clicks_for_a_box_trained_model_are_searched_in_a_worker(
    make_napari_viewer, qtbot, lite_medsam, nuclei_data, monkeypatch
):
    """LiteMedSAM turns a click into the box of the object under it: a batch of decoder passes, too slow
    for the main thread on a CPU. The click returns at once; the worker shows the whole image's answer
    as soon as the box is found, then the zoomed one; the search runs once for the three answers."""
    import napari_sam.segmenter as segmenter_module

    image, truth = nuclei_data
    widget = ready_annotator(make_napari_viewer, qtbot, lite_medsam, image)
    searches = []
    real_search = segmenter_module.search_boxes
    monkeypatch.setattr(
        segmenter_module, "search_boxes", lambda *a, **k: searches.append(1) or real_search(*a, **k)
    )
    shown = record_previews(widget)

    label = pick_nucleus(truth, skip=2)
    inside = np.argwhere(truth == label)
    centre = inside[np.argmin(((inside - inside.mean(axis=0)) ** 2).sum(axis=1))]
    widget.points_layer.add(centre)
    assert shown == [] and widget.previews.worker is not None  # nothing decoded on the main thread
    qtbot.waitUntil(lambda: widget.previews.worker is None, timeout=PREDICT_TIMEOUT_MS)
    assert [(how["inline"], how["coarse"]) for _, how in shown] == [(False, True), (False, False)]
    assert shown[0][0].windows[0].size == max(image.shape) > shown[1][0].windows[0].size
    assert iou(widget.preview_layer.data > 0, truth == label) >= 0.6
    assert len(searches) == 1  # the decode-only try, the coarse and the zoomed answer share one search
