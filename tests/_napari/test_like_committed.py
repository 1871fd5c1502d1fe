"""The annotator's "Find more like these": committed objects as examples, new objects in a review
layer, "Add them" commits what the user kept (real napari, real LiteMedSAM, real button clicks).
"""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt
from sam_napari_helpers import ENCODE_TIMEOUT_MS, ready_annotator

pytestmark = pytest.mark.gui

REVIEW = "nuclei SAM like committed"


def _crop(nuclei_data):
    image, truth = nuclei_data
    return image[176:336, 176:336], truth[176:336, 176:336]


def _largest(truth: np.ndarray, n: int) -> list[int]:
    ids, areas = np.unique(truth[truth > 0], return_counts=True)
    return [int(i) for i, _ in sorted(zip(ids, areas), key=lambda t: -t[1])[:n]]


def _click_find(qtbot, widget) -> None:
    qtbot.mouseClick(widget.like.find_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.like.worker is None, timeout=ENCODE_TIMEOUT_MS)


def test_find_more_like_these_then_add_them(
    make_napari_viewer, qtbot, lite_medsam, nuclei_data, artifacts_dir
):
    image, truth = _crop(nuclei_data)
    widget = ready_annotator(make_napari_viewer, qtbot, lite_medsam, image)
    viewer, seg = widget.viewer, widget.session.segmenter
    assert not widget.like.scope_combo.isVisible()  # a 2D image: no plane scope to choose

    _click_find(qtbot, widget)  # nothing committed yet: the core's message, no layer, no traceback
    assert "no committed objects to learn from" in widget.status.text()
    assert REVIEW not in viewer.layers and not widget.like.add_btn.isEnabled()

    examples = _largest(truth, 3)
    for i in examples:
        seg.commit(truth == i)
    committed = np.asarray(seg.labels).copy()
    assert len(np.unique(committed)) == 4

    _click_find(qtbot, widget)
    review = viewer.layers[REVIEW]
    found = np.asarray(review.data)
    ids = [int(i) for i in np.unique(found) if i]
    assert len(ids) >= 4, widget.status.text()
    assert not found[committed > 0].any()  # never over a committed object
    hits = [i for i in ids if (truth[found == i] > 0).mean() > 0.5]  # mostly on a nucleus
    assert len(hits) >= 0.8 * len(ids), (len(hits), len(ids))
    assert f"Found {len(ids)} objects like the 3 committed" in widget.status.text()
    assert np.allclose(review.scale, viewer.layers["nuclei"].scale)
    assert widget.like.add_btn.isEnabled() and review.mode == "fill" and review.selected_label == 0
    viewer.window._qt_window.resize(1200, 800)
    qtbot.wait(100)  # the dock lays out again (the progress panel went away)
    viewer.reset_view()
    viewer.screenshot(str(artifacts_dir / "napari_like_committed.png"), canvas_only=False)

    dropped = ids[0]  # the user drops one with the fill bucket (label 0)
    r, c = np.argwhere(found == dropped)[0]
    review.fill((r, c), 0)
    qtbot.mouseClick(widget.like.add_btn, Qt.MouseButton.LeftButton)
    assert REVIEW not in viewer.layers and not widget.like.add_btn.isEnabled()
    assert len(seg.annotations.objects) == 3 + len(ids) - 1
    assert widget.status.text().startswith(f"Added {len(ids) - 1} objects (ids 4–{len(ids) + 2})")
    labels = np.asarray(seg.labels)
    assert np.array_equal(labels[committed > 0], committed[committed > 0])  # the examples stay as they were
    assert not labels[found == dropped].any()  # the dropped one was not added
    kept = ids[1]
    assert (labels[found == kept] > 3).all()
    assert np.array_equal(np.asarray(widget.objects_layer.data), labels)  # the objects layer shows them
    assert viewer.layers.selection.active.name == "nuclei SAM points"  # back to prompting

    seg.undo()  # each added object is one undo step
    assert len(seg.annotations.objects) == 3 + len(ids) - 2
