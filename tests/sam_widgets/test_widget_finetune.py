"""``SamWidget.finetune(use=True)`` with the real model: a short fine-tune on the committed objects (9 blobs,
one whole-image window), then the session answers with the fine-tuned decoder from the embeddings it
already had (no encoder pass), its objects kept."""

from __future__ import annotations

import numpy as np

from napari_sam.io.samples import blobs
from sam_widgets import SamWidget

CENTRES = [(16 + 32 * (i // 3), 16 + 32 * (i % 3)) for i in range(9)]


def test_finetune_use_keeps_objects_and_embeddings(lite_medsam, tmp_path):
    image, labels = blobs((96, 96), CENTRES, [11] * len(CENTRES), seed=2)
    w = SamWidget(image, model=lite_medsam, labels=labels, zoom=False, progress=False)
    assert len(w.annotations.objects) == 9
    seg = w.segmenter
    encoded = seg.embeddings.encoded_count
    assert encoded >= 1
    model = w.finetune(minutes=30.0, max_epochs=1, batch_size=4, augment=0, device="cpu", out=tmp_path / "m")
    assert model.report["encoder_changed"] is False
    assert model.checkpoint == tmp_path / "m" / "model.safetensors"
    assert seg.model is model and w.segmenter is seg  # use=True is the default: the same session, new model
    assert w.status.endswith("; in use, embeddings kept")
    assert np.array_equal(w.labels, labels) and len(w.annotations.objects) == 9
    prediction = w.segment(points=[CENTRES[4]], labels=[1])
    truth = labels == 5
    mask = prediction.masks[0]
    assert (mask & truth).sum() / (mask | truth).sum() > 0.5
    assert seg.embeddings.encoded_count == encoded  # no encoder pass: the image's embeddings were kept
