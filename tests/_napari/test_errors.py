"""Failures reach the user as napari notifications with the reason, never silently."""

from __future__ import annotations

import numpy as np
import pytest
from sam_napari_helpers import ENCODE_TIMEOUT_MS, dock_annotator

pytestmark = pytest.mark.gui


def _wait_idle(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.busy, timeout=ENCODE_TIMEOUT_MS)


def test_worker_errors_become_notifications(make_napari_viewer, qtbot, lite_medsam, notifications):
    viewer = make_napari_viewer()
    viewer.add_image(np.full((64, 64), 7, np.uint16), name="flat")
    widget = dock_annotator(viewer, lite_medsam)

    widget.model_combo.setCurrentText("no_such_model")
    widget.compute_embeddings()
    _wait_idle(qtbot, widget)
    qtbot.waitUntil(lambda: any("no_such_model" in m for m in notifications), timeout=5000)
    assert "computing embeddings" in widget.status.text() and widget.session is None

    widget.model_combo.setCurrentText("lite_medsam")
    widget.compute_embeddings()  # the real core refuses a constant image inside the worker
    _wait_idle(qtbot, widget)
    qtbot.waitUntil(lambda: any("constant" in m for m in notifications), timeout=5000)
    assert widget.session is None and widget.compute_btn.isEnabled()

    viewer.add_image(np.zeros((4, 6, 3), np.uint8), name="tiny rgb")
    widget.image_combo.setCurrentText("tiny rgb")
    widget.compute_embeddings()
    assert any("too small to segment" in m for m in notifications)  # the notification: its first words
    assert "RGB" in widget.status.text()  # the whole message: in the dock's status line

    assert widget.commit() == []  # no embeddings yet: the user is told what to do first
    assert any("compute embeddings first" in m for m in notifications)


def test_missing_core_features_are_reported(make_napari_viewer, qtbot, notifications, tmp_path):
    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8), name="img")
    _, everything = viewer.window.add_plugin_dock_widget("napari-sam", "Segment everything")
    _, batch = viewer.window.add_plugin_dock_widget("napari-sam", "Batch labeling")
    batch.outdir.setText(str(tmp_path / "out"))
    batch.add_files([str(tmp_path / "missing.tif")])
    assert batch.run() is None
    assert any("do not exist" in m for m in notifications)
