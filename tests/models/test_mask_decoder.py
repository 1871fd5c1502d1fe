"""The mask decoder's attention shortcuts give plain attention's results (fp32, random weights)."""

import pytest
import torch

from napari_sam.models.mask_decoder import TokenAttention


@pytest.fixture
def attention():
    torch.manual_seed(0)
    return TokenAttention(dim=32, num_heads=4, downsample_rate=2).eval()


@pytest.mark.parametrize("shared_image", [True, False])
def test_tokens_attending_the_image_match_plain_attention(attention, shared_image):
    b, t, n, c = 3, 5, 40, 32
    tokens = torch.randn(b, t, c)
    image = torch.randn(1 if shared_image else b, n, c)
    pe = torch.randn(1, n, c)
    with torch.no_grad():
        plain = attention(tokens, (image + pe).expand(b, -1, -1), image.expand(b, -1, -1))
        with_pe = attention.tokens_attend_image(tokens, image, image, pe)
        summed = attention.tokens_attend_image(tokens, image + pe, image)
    torch.testing.assert_close(with_pe, plain, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(summed, plain, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shared_image", [True, False])
def test_the_image_attending_tokens_matches_plain_attention(attention, shared_image):
    b, t, n, c = 3, 5, 40, 32
    tokens_k, tokens_v = torch.randn(b, t, c), torch.randn(b, t, c)
    image = torch.randn(1 if shared_image else b, n, c)
    pe = torch.randn(1, n, c)
    with torch.no_grad():
        plain = attention((image + pe).expand(b, -1, -1), tokens_k, tokens_v)
        with_pe = attention.image_attends_tokens(image, tokens_k, tokens_v, pe)
        summed = attention.image_attends_tokens(image + pe, tokens_k, tokens_v)
        added = attention.image_attends_tokens(image, tokens_k, tokens_v, pe, residual=image)
    torch.testing.assert_close(with_pe, plain, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(summed, plain, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(added, image + plain, rtol=1e-4, atol=1e-5)


def test_the_shortcuts_train_like_plain_attention(attention):
    b, t, n, c = 2, 4, 24, 32
    tokens, image, pe = torch.randn(b, t, c), torch.randn(b, n, c), torch.randn(1, n, c)
    plain = attention((image + pe), tokens, tokens).square().sum()
    (g_plain,) = torch.autograd.grad(plain, attention.q_proj.weight)
    short = attention.image_attends_tokens(image, tokens, tokens, pe, residual=image).sub(image)
    short = short.square().sum()
    (g_short,) = torch.autograd.grad(short, attention.q_proj.weight)
    torch.testing.assert_close(g_short, g_plain, rtol=1e-3, atol=1e-4)
