"""Where previews are predicted (napari_sam._napari._preview), in a real viewer with the real model:
at once on the main thread when the embeddings are in memory, a rough answer (a thin outline) then
the zoomed one for a new object, box searches for clicks in a worker, late answers dropped; what a
new object costs (decoder passes, encoder runs); a commit while the refined mask is on its way."""

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

from napari_sam._napari._annotator_layers import PREVIEW_CONTOUR, ROUGH_CONTOUR

pytestmark = pytest.mark.gui


def test_previews_come_at_once_then_sharpen(make_napari_viewer, qtbot, lite_medsam, nuclei_data):
    """With the embeddings in memory a prompt is answered on the main thread, inside the layer edit
    (no worker, no frame in between). The first prompt on an object, whose zoom window is not embedded
    yet, shows the whole image's answer at once and the zoom window's answer when its worker is done;
    a worker's answer that arrives after the prompts were cleared is dropped."""
    image, truth = nuclei_data
    widget = ready_annotator(make_napari_viewer, qtbot, lite_medsam, image)
    widget.previews.inline_budget_s = 10.0  # the test machine is shared: a decoder pass may be slow here
    shown = record_previews(widget)

    label = pick_nucleus(truth)
    widget.shapes_layer.add_rectangles(object_rect(truth, label))
    assert len(shown) == 1  # painted before add_rectangles returned
    first, how = shown[0]
    assert how["inline"] and how["coarse"] and first.windows[0].size == max(image.shape)
    assert iou(widget.preview_layer.data > 0, truth == label) >= 0.3
    assert widget.preview_layer.contour == ROUGH_CONTOUR and "refining" in widget.status.text()  # provisional
    assert widget.previews.worker is not None  # the zoom window is being embedded
    qtbot.waitUntil(lambda: widget.previews.worker is None, timeout=PREDICT_TIMEOUT_MS)
    refined, how = shown[-1]
    assert len(shown) == 2 and not how["inline"] and not how["coarse"]
    assert refined.windows[0].size < max(image.shape)
    assert iou(widget.preview_layer.data > 0, truth == label) >= 0.7
    assert widget.preview_layer.contour == PREVIEW_CONTOUR and "refining" not in widget.status.text()

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
    """LiteMedSAM turns a click into the box of the object under it: an encoder pass and a batch of
    decoder passes, too slow for the main thread on a CPU. The click returns at once; the worker searches
    the box in the zoom window a nucleus of the image's typical size gets, shows the whole image's answer
    as soon as the box is found, then the zoomed one (this nucleus, larger than most, gets a larger zoom
    window). One new object costs one box search, one whole-image answer, one zoom-window answer and two
    encoder passes."""
    import napari_sam.prediction.progressive as progressive_module

    image, truth = nuclei_data
    widget = ready_annotator(make_napari_viewer, qtbot, lite_medsam, image)
    searches = []
    real_search = progressive_module.search_boxes
    monkeypatch.setattr(
        progressive_module, "search_boxes", lambda *a, **k: searches.append(1) or real_search(*a, **k)
    )
    seg = widget.session.segmenter
    decoded = []  # (window side, prompts in the decoder pass) of every decoder call
    real_decode = seg._decode_group
    monkeypatch.setattr(
        seg,
        "_decode_group",
        lambda window, boxes, *a, **k: (
            decoded.append((window.size, len(boxes))) or real_decode(window, boxes, *a, **k)
        ),
    )
    encoded = seg.embeddings.encoded_count
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
    assert len(searches) == 1  # the rough and the zoomed answer share one search
    searched = [size for size, n in decoded if n > 1]
    assert len(searched) == 1 and 128 <= searched[0] < 512  # the search: one batch of boxes, zoomed
    assert len([1 for size, n in decoded if size == 512 and n == 1]) == 1  # one whole-image answer
    assert len([1 for size, n in decoded if size < 512 and n == 1]) == 1  # one zoom window answer
    assert seg.embeddings.encoded_count == encoded + 2  # the search's window and the answer's


def test_commit_while_refining_commits_the_refined_mask(make_napari_viewer, qtbot, lite_medsam, nuclei_data):
    """C pressed while the rough preview is shown: the prompts clear at once, the next object's rough
    preview comes at once (not queued behind the refinement), and the refined mask of the first object
    is what gets committed when it arrives; the status says so."""
    from qtpy.QtCore import Qt

    image, truth = nuclei_data
    widget = ready_annotator(make_napari_viewer, qtbot, lite_medsam, image)
    widget.previews.inline_budget_s = 10.0  # the test machine is shared: a decoder pass may be slow here
    shown = record_previews(widget)
    first, second = pick_nucleus(truth, skip=5), pick_nucleus(truth, skip=6)
    widget.shapes_layer.add_rectangles(object_rect(truth, first))
    assert len(shown) == 1 and shown[0][1]["coarse"] and widget.previews.refining
    canvas = widget.viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    committed = []
    widget.committed.connect(committed.append)
    qtbot.keyClick(canvas, "c", Qt.KeyboardModifier.NoModifier)
    assert committed == [] and not widget.objects_layer.data.any()  # never the rough mask
    assert "refined mask as soon as it is ready" in widget.status.text()
    assert len(widget.shapes_layer.data) == 0 and not widget.preview_layer.data.any()
    widget.shapes_layer.add_rectangles(object_rect(truth, second))  # the next object, at once
    assert len(shown) == 3 and shown[-1][1]["inline"]  # (the clear, then its rough preview)
    qtbot.waitUntil(lambda: bool(committed), timeout=PREDICT_TIMEOUT_MS)
    assert committed == [[1]] and "Committed the refined object 1" in widget.status.text()
    refined = widget.session.segmenter.predict(box=object_rect(truth, first).ravel())  # zoomed, cached
    assert refined.windows[0].size < max(image.shape)
    np.testing.assert_array_equal(widget.objects_layer.data == 1, refined.masks[0])
    assert iou(widget.objects_layer.data == 1, truth == first) >= 0.7
    qtbot.waitUntil(lambda: not widget.previews.busy, timeout=PREDICT_TIMEOUT_MS)
    assert iou(widget.preview_layer.data > 0, truth == second) >= 0.7  # the second object refined too
