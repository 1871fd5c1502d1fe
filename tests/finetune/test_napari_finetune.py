"""The "Train on my annotations" dock widget runs a real fine-tune in a worker; Cancel keeps the best model,
which is saved into the model cache and listed by ``napari-sam models list``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.gui

CENTRES = [(16 + 32 * (i // 3), 16 + 32 * (i % 3)) for i in range(9)]


def test_train_widget_cancel_saves_best_model(make_napari_viewer, qtbot, model_cache, capsys):
    from napari_sam._cli.main import main
    from napari_sam.io.samples import blobs

    image, labels = blobs((96, 96), CENTRES, [11] * len(CENTRES), seed=2)
    viewer = make_napari_viewer()
    viewer.add_image(image, name="blobs")
    viewer.add_labels(labels, name="objects")
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam", "Train on my annotations")
    widget.image_combo.setCurrentText("blobs")
    widget.labels_combo.setCurrentText("objects")
    widget.device_combo.setCurrentText("cpu")
    widget.minutes.setValue(30.0)
    widget.name_edit.setText("blobs-tuned")
    shown = []  # (progress line, phase) as the dock's progress panel showed them
    widget.progress.changed.connect(lambda line, detail: shown.append((line, detail)))
    worker = widget.run()
    qtbot.waitUntil(
        lambda: any(d.startswith("Phase 2 of 2: training") and " steps" in t for t, d in shown),
        timeout=15 * 60_000,
    )
    widget.cancel_btn.click()  # the progress panel's Cancel
    with qtbot.waitSignal(worker.finished, timeout=10 * 60_000):
        pass
    embedding = [t for t, d in shown if d.startswith("Phase 1 of 2: embedding")]
    assert any(" % · " in t and " windows" in t for t in embedding), shown
    assert any(" left" in t for t, d in shown if d.startswith("Phase 2 of 2")), shown  # trainer ETA
    assert widget.model is not None and widget.model.report["stopped_by"] == "cancelled"
    assert "Held-out box mIoU " in widget.result.text() and "click IoU" in widget.result.text()
    assert "(2 objects)" in widget.result.text()
    path = Path(widget.saved_path)
    assert path == model_cache / "finetuned" / "blobs-tuned" / "model.safetensors" and path.is_file()
    assert widget.run_btn.isEnabled() and not widget.cancel_btn.isEnabled()
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    listed = capsys.readouterr().out
    assert "blobs-tuned" in listed and str(path) in listed
    assert np.array_equal(viewer.layers["objects"].data, labels)  # the user's labels are untouched
