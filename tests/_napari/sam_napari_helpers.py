"""Helpers of the napari tests (ground-truth objects, IoU, waiting for the annotator's workers)."""

from __future__ import annotations

import numpy as np

ENCODE_TIMEOUT_MS = 120_000  # the test machine is shared: encoding may take several seconds
PREDICT_TIMEOUT_MS = 60_000


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return float((a & b).sum() / max((a | b).sum(), 1))


def object_box(truth: np.ndarray, label: int) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(truth == label)
    return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())


def object_rect(truth: np.ndarray, label: int, pad: int = 0) -> np.ndarray:
    """The (2, 2) [[min_row, min_col], [max_row, max_col]] rectangle of a ground-truth object, grown by
    ``pad``: what ``Shapes.add_rectangles`` takes."""
    r0, c0, r1, c1 = object_box(truth, label)
    return np.array([[r0 - pad, c0 - pad], [r1 + pad, c1 + pad]], dtype=float)


def pick_nucleus(truth: np.ndarray, min_area: int = 250, max_area: int = 900, skip: int = 0) -> int:
    """A mid-sized ground-truth nucleus away from the border (the ``skip``-th largest such)."""
    ids, areas = np.unique(truth[truth > 0], return_counts=True)
    h, w = truth.shape
    found = []
    for i, a in sorted(zip(ids, areas), key=lambda t: -t[1]):
        if not min_area <= a <= max_area:
            continue
        r0, c0, r1, c1 = object_box(truth, i)
        if r0 > 20 and c0 > 20 and r1 < h - 20 and c1 < w - 20:
            found.append(int(i))
    return found[skip]


def dock_annotator(viewer, model):
    """The plugin's annotator docked in ``viewer``, given the already loaded real model."""
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam", "Annotator")
    widget.device_combo.setCurrentText("cpu")
    widget._models[("lite_medsam", "cpu")] = model
    return widget


def compute(qtbot, widget):
    with qtbot.waitSignal(widget.embeddings_ready, timeout=ENCODE_TIMEOUT_MS):
        widget.compute_embeddings()
    qtbot.waitUntil(lambda: widget._encode_worker is None, timeout=ENCODE_TIMEOUT_MS)


def wait_preview(qtbot, widget, action):
    with qtbot.waitSignal(widget.preview_updated, timeout=PREDICT_TIMEOUT_MS):
        action()
    qtbot.waitUntil(lambda: not widget.previews.busy, timeout=PREDICT_TIMEOUT_MS)


def ready_annotator(make_napari_viewer, qtbot, model, image, cache=None):
    """A viewer with ``image`` as layer "nuclei" and the annotator docked, its embeddings computed."""
    viewer = make_napari_viewer(show=True)
    viewer.add_image(image, name="nuclei")
    widget = dock_annotator(viewer, model)
    widget.image_combo.setCurrentText("nuclei")
    if cache is not None:
        widget.cache_edit.setText(str(cache))
    compute(qtbot, widget)
    return widget


def record_previews(widget) -> list:
    """(prediction, last_timing) of every preview the widget shows from now on."""
    shown = []
    widget.preview_updated.connect(lambda p: shown.append((p, dict(widget.last_timing))))
    return shown
