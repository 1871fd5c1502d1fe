"""The segment-everything and batch widgets drive the real core (automatic mode, ``batch.run_batch``)."""

from __future__ import annotations

import numpy as np
import pytest
from sam_napari_helpers import ENCODE_TIMEOUT_MS

pytestmark = pytest.mark.gui


def _blobs(side=256):
    from napari_sam.io.samples import blobs

    centres = [(60, 60), (60, 180), (180, 70), (190, 190), (125, 125)]
    return blobs((side, side), centres, [14, 18, 12, 16, 15], seed=3)


def test_segment_everything_on_the_shown_plane(make_napari_viewer, qtbot, lite_medsam):
    image, truth = _blobs()
    viewer = make_napari_viewer()
    viewer.add_image(np.stack([image, image]), name="blobs", scale=(3.0, 1.0, 1.0))
    viewer.dims.set_point(0, 3.0)  # plane 1
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam", "Segment everything")
    widget.device_combo.setCurrentText("cpu")
    widget._models[("lite_medsam", "cpu")] = lite_medsam
    with qtbot.waitSignal(widget.run().finished, timeout=2 * ENCODE_TIMEOUT_MS):
        pass
    layer = viewer.layers["blobs SAM everything"]
    assert layer.data.shape == (2, 256, 256) and not layer.data[0].any()
    found = layer.data[1]
    hits = [len(set(np.unique(found[truth == i])) - {0}) for i in range(1, 6)]
    assert sum(h >= 1 for h in hits) >= 4, hits  # (nearly) every blob is found
    assert np.allclose(layer.scale, (3.0, 1.0, 1.0))


def test_segment_everything_on_a_whole_stack_gives_3d_labels(make_napari_viewer, qtbot, lite_medsam):
    """A dim anisotropic stack: the scope is offered for it (not for a 2D image), every plane is
    segmented with one id per object through z, and the dock says how many objects through how many
    planes and how the stack was read."""
    from qtpy.QtCore import Qt

    from napari_sam.automatic import match_scores
    from napari_sam.io.sample_variants import anisotropic_stack

    stack, truth = anisotropic_stack((10, 96, 96), count=10, seed=1)
    viewer = make_napari_viewer()
    viewer.add_image(stack[0], name="flat")
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam", "Segment everything")
    assert not widget.scope_combo.isVisibleTo(widget)  # a 2D image: no scope
    viewer.add_image(stack, name="dim stack")
    widget.image_combo.setCurrentText("dim stack")
    assert widget.scope_combo.isVisibleTo(widget) and widget.scope_combo.currentText() == "this plane"
    widget.scope_combo.setCurrentText("whole stack (3D)")
    widget.device_combo.setCurrentText("cpu")
    widget._models[("lite_medsam", "cpu")] = lite_medsam
    qtbot.mouseClick(widget.run_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: widget._worker is None and widget.run_btn.isEnabled(), timeout=2 * ENCODE_TIMEOUT_MS
    )
    labels = np.asarray(viewer.layers["dim stack SAM everything"].data)
    assert labels.shape == stack.shape
    scores = match_scores(labels, truth)  # 3D matching: ids must hold through the planes
    assert scores["f1"] >= 0.7, scores
    text = widget.status.text()
    assert "objects through 10 planes (3D labels)" in text and "read as bright objects" in text, text
    viewer.add_labels(truth, name="examples")  # examples guide one plane: refused for the whole stack
    viewer.dims.set_point(0, 5)  # a plane with objects
    widget.examples_combo.setCurrentText("examples")
    assert widget.run() is None and "examples guide one plane" in widget.status.text()


def _inputs(tmp_path, n):
    import tifffile

    from napari_sam.io.samples import blobs

    src = tmp_path / "in"
    src.mkdir()
    for i in range(n):
        tifffile.imwrite(
            src / f"f{i}.tif", blobs((96, 96 + 16 * i), [(30, 30), (62, 66)], [10, 12], seed=i)[0]
        )
    return [str(src / f"f{i}.tif") for i in range(n)]


def _batch_widget(make_napari_viewer, tmp_path, files):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam", "Batch labeling")
    widget.add_files(files)
    widget.outdir.setText(str(tmp_path / "out"))
    widget.device_combo.setCurrentText("cpu")
    shown = []
    real = widget.set_status
    widget.set_status = lambda text: (shown.append(text), real(text))  # what the dock showed, in order
    widget.progress.changed.connect(lambda line, detail: shown.append(line))  # and its progress panel
    return viewer, widget, shown


def test_batch_widget_runs_the_core_job_with_percentages(make_napari_viewer, qtbot, tmp_path):
    files = _inputs(tmp_path, 2)
    viewer, widget, shown = _batch_widget(make_napari_viewer, tmp_path, files)
    with qtbot.waitSignal(widget.run().finished, timeout=4 * ENCODE_TIMEOUT_MS):
        pass
    assert widget.report.ok and len(widget.written) == 2, widget.report
    assert "Labeling 2 file(s) …" in shown
    assert any(t.startswith("50 % · 1/2 planes") for t in shown) and "100 % · 2/2 planes" in shown
    assert "Labeled 2 file(s)" in widget.status.text()
    opened = [layer for layer in viewer.layers if layer.__class__.__name__ == "Labels"]
    assert len(opened) == 2 and all(layer.data.max() >= 2 for layer in opened)


def test_batch_widget_cancel_keeps_the_finished_files(make_napari_viewer, qtbot, tmp_path):
    files = _inputs(tmp_path, 3)
    _, widget, shown = _batch_widget(make_napari_viewer, tmp_path, files)
    worker = widget.run()
    qtbot.waitUntil(lambda: any("%" in text for text in shown), timeout=4 * ENCODE_TIMEOUT_MS)
    widget.cancel_btn.click()
    with qtbot.waitSignal(worker.finished, timeout=4 * ENCODE_TIMEOUT_MS):
        pass
    assert widget.status.text() == "Cancelled batch labeling."
    written = sorted((tmp_path / "out").glob("*.labels.json"))
    assert 1 <= len(written) < 3  # the finished files are kept, the rest were not started
    assert widget.run_btn.isEnabled() and not widget.cancel_btn.isEnabled()


def test_batch_widget_errors_are_the_cores(make_napari_viewer, qtbot, tmp_path, notifications):
    files = _inputs(tmp_path, 1)
    _, widget, _ = _batch_widget(make_napari_viewer, tmp_path, files)
    widget.model_combo.setCurrentText("no_such_model")
    assert widget.run() is not None  # the core refuses the model in the worker, before any plane
    qtbot.waitUntil(lambda: widget.run_btn.isEnabled(), timeout=ENCODE_TIMEOUT_MS)
    qtbot.waitUntil(lambda: any("unknown model 'no_such_model'" in m for m in notifications), timeout=5000)
    assert "unknown model 'no_such_model'" in widget.status.text()
