"""Which embeddings a fine-tuned model can reuse: a decoder-only fine-tune runs its base's image encoder
(also when loaded back from its file), so a session switched to it keeps its embeddings; a model with
another encoder makes the session embed the image again, its objects kept."""

from __future__ import annotations

import dataclasses

import numpy as np

from napari_sam.finetune.identity import encoder_identity, keeps_embeddings, what_changed
from napari_sam.finetune.tuned_model import use_in_session


def test_decoder_only_finetune_runs_the_base_encoder(tuned, lite_medsam):
    from napari_sam.models.loading import load_model

    model, path, _ = tuned
    loaded = load_model(path, device="cpu")
    assert model.report["base"]["encoder_sha256"] == lite_medsam.checkpoint_sha256
    assert encoder_identity(model) == encoder_identity(loaded) == lite_medsam.checkpoint_sha256
    assert keeps_embeddings(lite_medsam, model) and keeps_embeddings(lite_medsam, loaded)
    assert keeps_embeddings(loaded, lite_medsam)
    assert what_changed(loaded) == "decoder fine-tuned" and what_changed(lite_medsam) is None
    other = dataclasses.replace(lite_medsam, checkpoint_sha256="0" * 64)  # another checkpoint, same kind
    assert not keeps_embeddings(other, model)
    fp32, bf16 = (dataclasses.replace(m, precision=p) for m, p in ((lite_medsam, "fp32"), (loaded, "bf16")))
    assert not keeps_embeddings(fp32, bf16)  # explicit: the fixture itself is bf16 on bf16 hardware


def test_use_in_session_keeps_or_recomputes_embeddings(tuned, nuclei_crop, lite_medsam):
    from napari_sam.segmenter import Segmenter

    model, _, _ = tuned
    img, lab = nuclei_crop
    seg = Segmenter(lite_medsam, zoom=False)
    seg.set_image(img)
    seg.load_labels(lab)
    embeddings, encoded = seg.embeddings, seg.embeddings.encoded_count
    assert use_in_session(seg, model) is True
    assert seg.model is model and seg.embeddings is embeddings and embeddings.encoded_count == encoded
    adapted = dataclasses.replace(model, report={**model.report, "encoder_changed": True})
    assert use_in_session(seg, adapted) is False
    assert seg.model is adapted and seg.embeddings is not embeddings and seg.embeddings.encoded_count >= 1
    assert np.array_equal(seg.labels, lab)  # the objects are kept
    assert seg.predict(box=(0, 0, 40, 40)).masks.shape == (1, *img.shape)


def test_decoder_only_finetune_reuses_the_base_models_cache(tuned, nuclei_crop, lite_medsam, tmp_path):
    from napari_sam.models.loading import load_model
    from napari_sam.segmenter import Segmenter

    model, path, _ = tuned
    img, lab = nuclei_crop
    cache = tmp_path / "embeddings.zarr"
    base = Segmenter(lite_medsam, zoom=False)
    base.set_image(img, cache=cache)
    assert base.embeddings.encoded_count >= 1
    box = (10, 10, 50, 50)
    for tuned_model in (model, load_model(path, device="cpu")):  # in memory, and loaded from its file
        seg = Segmenter(tuned_model, zoom=False)
        seg.set_image(img, cache=cache)
        assert seg.predict(box=box).masks.shape == (1, *img.shape)
        assert seg.embeddings.encoded_count == 0  # every tile came from the base model's cache
    adapted = dataclasses.replace(model, report={**model.report, "encoder_changed": True})
    seg = Segmenter(adapted, zoom=False)
    seg.set_image(img, cache=cache)
    seg.predict(box=box)
    assert seg.embeddings.encoded_count >= 1  # another encoder: the cache is rebuilt, never reused


def test_a_fresh_base_copy_resolves_device_auto(lite_medsam):
    """``finetune(..., device="auto")`` (the default, and what the notebook's ``w.finetune`` passes) on a
    loaded model: the copy is made on the resolved device, with the base's precision and backend."""
    from napari_sam.finetune.base_weights import load_base

    copy = load_base(lite_medsam, "auto")
    assert copy is not lite_medsam and copy.network is not lite_medsam.network
    assert copy.device.type == lite_medsam.device.type == "cpu"
    assert (copy.precision, copy.backend) == (lite_medsam.precision, lite_medsam.backend)
