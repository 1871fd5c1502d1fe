"""Low-rank adapters on the real LiteMedSAM encoder: they start as the identity, change the embedding once
trained, and merge into plain weights that give the same embedding."""

from __future__ import annotations

import torch

from napari_sam.finetune.lora import add_adapters, attention_projections, merge_adapters


def test_adapters_start_neutral_and_merge_exactly(lite_medsam):
    from napari_sam.models.loading import load_model

    model = load_model(lite_medsam.checkpoint, device="cpu", architecture="lite_medsam", precision="fp32")
    encoder = model.network.image_encoder
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = encoder(x)
    params = add_adapters(encoder, rank=2)
    assert len(params) == 2 * len(attention_projections(encoder)) > 0
    with torch.no_grad():
        assert torch.allclose(encoder(x), before, atol=1e-5)  # B = 0: the base encoder
        for p in params[1::2]:
            p.normal_(0, 0.02)  # as if trained
        adapted = encoder(x)
    assert (adapted - before).abs().max() > 1e-3
    merge_adapters(encoder)
    assert all(type(layer.weight) is torch.nn.Parameter for layer in attention_projections(encoder))
    with torch.no_grad():
        assert torch.allclose(encoder(x), adapted, atol=1e-4)
