"""'Use this model' in the fine-tune dock switches the annotator to the fine-tuned model: a real short
fine-tune of LiteMedSAM on the annotator's committed objects (9 blobs, one whole-image window), then the
button: the annotator's session runs the new checkpoint, its objects are kept, a decoder-only fine-tune
keeps the image embeddings (no encoder pass), the model box shows the new path, and a click still gives a
mask. Real napari under Xvfb, real model, real clicks on the buttons."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sam_napari_helpers import compute, dock_annotator, iou, wait_preview

pytestmark = pytest.mark.gui

CENTRES = [(16 + 32 * (i // 3), 16 + 32 * (i % 3)) for i in range(9)]


def test_use_this_model_switches_the_annotator_keeping_objects_and_embeddings(
    make_napari_viewer, qtbot, lite_medsam, model_cache
):
    from qtpy.QtCore import Qt

    from napari_sam.io.samples import blobs

    image, labels = blobs((96, 96), CENTRES, [11] * len(CENTRES), seed=2)
    viewer = make_napari_viewer(show=True)
    viewer.add_image(image, name="blobs")
    annotator = dock_annotator(viewer, lite_medsam)
    annotator.image_combo.setCurrentText("blobs")
    compute(qtbot, annotator)
    # the objects: an existing segmentation made the annotator's committed objects
    viewer.add_labels(labels, name="my blobs")
    annotator.refine.labels_combo.setCurrentText("my blobs")
    qtbot.mouseClick(annotator.refine.load_btn, Qt.MouseButton.LeftButton)
    session = annotator.session
    assert len(session.annotations.objects) == 9
    encoded = session.segmenter.embeddings.encoded_count
    assert encoded >= 1

    _, tune = viewer.window.add_plugin_dock_widget("napari-sam", "Train on my annotations")
    tune.image_combo.setCurrentText("blobs")
    tune.labels_combo.setCurrentText(annotator.objects_layer.name)
    tune.device_combo.setCurrentText("cpu")
    tune.minutes.setValue(30.0)
    tune.name_edit.setText("blobs-accept")
    assert not tune.use_btn.isEnabled()
    steps = []
    tune.training.connect(lambda p: steps.append(p.done) if p.stage == "training" else None)
    worker = tune.run()
    qtbot.waitUntil(lambda: len(steps) >= 3, timeout=10 * 60_000)  # a few real steps, then Cancel
    qtbot.mouseClick(tune.cancel_btn, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(worker.finished, timeout=5 * 60_000):
        pass
    model = tune.model
    assert model is not None and model.report["encoder_changed"] is False
    v = model.report["validation"]
    assert f"box mIoU {v['before']:.3f} → {v['after']:.3f}" in tune.result.text()
    assert f"click IoU {v['click_before']:.3f} → {v['click_after']:.3f}" in tune.result.text()
    assert tune.use_btn.isEnabled()

    qtbot.mouseClick(tune.use_btn, Qt.MouseButton.LeftButton)
    path = tune.saved_path
    sidecar = json.loads((path.parent / "model.json").read_text())
    assert annotator.session is session  # the same session: image, objects, embeddings
    assert session.model is model and session.segmenter.model is model
    assert session.model.checkpoint == path
    assert session.model.checkpoint_sha256 == sidecar["weights"]["sha256"]
    assert annotator.model_combo.currentText() == str(path)
    expected = "Using model.safetensors (decoder fine-tuned): embeddings kept"
    assert annotator.status.text().startswith(expected) and tune.status.text().startswith(expected)
    assert np.array_equal(session.annotations.labels, labels) and len(session.annotations.objects) == 9
    assert np.array_equal(annotator.objects_layer.data, labels)
    assert session.segmenter.embeddings.encoded_count == encoded  # nothing embedded again

    # a click on a blob is answered by the fine-tuned decoder from the kept embeddings
    blob = 5
    wait_preview(qtbot, annotator, lambda: annotator.points_layer.add(np.array(CENTRES[blob - 1], float)))
    assert session.segmenter.last_prediction is not None
    assert iou(annotator.preview_layer.data > 0, labels == blob) > 0.5
    assert session.segmenter.embeddings.encoded_count == encoded

    # the next round of training starts from the model the annotator now uses, until the user picks one
    tune.hide()
    tune.show()  # the dock shown again follows the annotator
    assert tune.model_combo.currentText() == str(path)
    tune.model_combo.setCurrentText("lite_medsam")
    tune.model_combo.activated.emit(0)  # what a pick in the list sends
    assert tune.follow_annotator_model() == "lite_medsam"
