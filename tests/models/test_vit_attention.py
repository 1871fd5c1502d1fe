"""The folded relative-position attention (GPU path of the ViT encoder) equals the explicit-bias one."""

import pytest
import torch

from napari_sam.models.layers import biased_attention
from napari_sam.models.vit import rel_pos_attention


@pytest.mark.parametrize("h, w", [(14, 14), (8, 5)])
def test_rel_pos_attention_matches_explicit_bias(h, w):
    torch.manual_seed(0)
    b, heads, d = 2, 3, 16
    n = h * w
    q, k, v = (torch.randn(b, heads, n, d) for _ in range(3))
    bias_h = torch.randn(b, heads, n, h) * 2
    bias_w = torch.randn(b, heads, n, w) * 2
    explicit = (bias_h[..., :, None] + bias_w[..., None, :]).reshape(b, heads, n, n)
    expected = biased_attention(q, k, v, explicit)
    got = rel_pos_attention(q, k, v, bias_h, bias_w, h, w)
    assert got.shape == (b, heads, n, d)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    # the bias matters: without it the result differs
    assert (torch.nn.functional.scaled_dot_product_attention(q, k, v) - expected).abs().max() > 0.1
