"""encode_batch with a compiled encoder: one batch size, smaller batches padded, larger ones split."""

import dataclasses

import torch

from napari_sam.embeddings.encoder import encode_batch, to_host


def test_compiled_encoder_sees_one_batch_size(lite_medsam):
    seen = []
    lite_medsam = dataclasses.replace(lite_medsam, precision="fp32")  # one arithmetic on both paths
    eager = lite_medsam.network.image_encoder

    def fixed_size_encoder(x):  # stands for torch.compile's module: records what it is given
        seen.append(x.shape[0])
        return eager(x)

    model = dataclasses.replace(lite_medsam, compiled_encoder=fixed_size_encoder, compiled_batch=0)
    torch.manual_seed(0)
    x = torch.randn(3, 3, 256, 256)
    first = encode_batch(model, x[:2])  # fixes the batch size at 2
    padded = encode_batch(model, x[:1])
    split = encode_batch(model, x)
    assert seen == [2, 2, 2, 2]
    assert model.compiled_batch == 2
    assert first.shape[0] == 2 and padded.shape[0] == 1 and split.shape[0] == 3
    reference = encode_batch(lite_medsam, x)
    torch.testing.assert_close(split, reference, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(padded[0], reference[0], atol=1e-3, rtol=1e-3)


def test_to_host_keeps_cpu_tensors():
    t = torch.ones(2, 3)
    assert to_host(t, pin=True) is t
