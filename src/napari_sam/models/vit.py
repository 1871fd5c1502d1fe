"""SAM's ViT image encoder (ViT-B/L/H and smaller test configurations), in plain torch.

Windowed attention with zero padding, decomposed relative position biases, a few global-attention
blocks and a convolutional neck; state-dict keys are those of the official checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from napari_sam.models.fused import apply_linear
from napari_sam.models.layers import (
    FeedForward,
    LayerNorm2d,
    biased_attention,
    from_windows,
    pad_to_multiple,
    to_windows,
)


@dataclass(frozen=True)
class ViTConfig:
    """Hyper-parameters of a SAM ViT encoder (defaults: ViT-B at 1024 px)."""

    img_size: int = 1024
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    out_chans: int = 256
    qkv_bias: bool = True
    use_rel_pos: bool = True
    window_size: int = 14
    global_attn_indexes: tuple[int, ...] = field(default=(2, 5, 8, 11))


def relative_positions(q_size: int, k_size: int, table: torch.Tensor) -> torch.Tensor:
    """Look up a (q_size, k_size, C) slice of a relative-position table, resampling it if needed."""
    span = 2 * max(q_size, k_size) - 1
    if table.shape[0] != span:
        table = F.interpolate(table.T[None], size=span, mode="linear")[0].T
    q_coords = torch.arange(q_size, device=table.device)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size, device=table.device)[None, :] * max(q_size / k_size, 1.0)
    offsets = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return table[offsets.long()]


class ViTAttention(nn.Module):
    """Multi-head self-attention over a (B, H, W, C) grid with decomposed relative positions."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool, use_rel_pos: bool, grid: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.use_rel_pos = use_rel_pos
        if use_rel_pos:
            head_dim = dim // num_heads
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * grid - 1, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * grid - 1, head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        n = h * w
        qkv = apply_linear(self.qkv, x).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B, heads, N, head_dim)
        if not self.use_rel_pos:
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            rh = relative_positions(h, h, self.rel_pos_h).to(q.dtype)  # (h, h, d)
            rw = relative_positions(w, w, self.rel_pos_w).to(q.dtype)  # (w, w, d)
            q_grid = q.reshape(b, self.num_heads, h, w, -1)
            bias_h = torch.einsum("bnhwd,hkd->bnhwk", q_grid, rh).reshape(b, self.num_heads, n, h)
            bias_w = torch.einsum("bnhwd,wkd->bnhwk", q_grid, rw).reshape(b, self.num_heads, n, w)
            if q.device.type == "cpu":
                bias = (bias_h[..., :, None] + bias_w[..., None, :]).reshape(b, self.num_heads, n, n)
                out = biased_attention(q, k, v, bias)
            else:
                out = rel_pos_attention(q, k, v, bias_h, bias_w, h, w)
        out = out.transpose(1, 2).reshape(b, h, w, c)
        return apply_linear(self.proj, out)


def rel_pos_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias_h: torch.Tensor,
    bias_w: torch.Tensor,
    h: int,
    w: int,
) -> torch.Tensor:
    """softmax(q·kᵀ/√d + bias_h[i, row(j)] + bias_w[i, col(j)])·v without the (N, N) bias tensor.

    The decomposed relative-position bias of query i and key j is a dot product of [bias_h[i], bias_w[i]]
    with the one-hot row and column of key j, so it folds into the attention product itself: queries
    gain the bias terms (divided by the scale), keys gain their one-hot position, and values are padded
    to the same width. Then one flash-attention call does the work, instead of writing and reading an
    (N, N) bias per head (3 GB for a batch of 8 ViT-B images at 1024²). Same result up to rounding.

    Parameters
    ----------
    q, k, v
        (B, heads, N, d) with N = h·w tokens in row-major order.
    bias_h, bias_w
        (B, heads, N, h) and (B, heads, N, w): each query's bias for every key row / key column.
    """
    b, heads, n, d = q.shape
    scale = d**-0.5
    width = d + h + w
    pad = (-width) % 8  # fused attention kernels want a head width that is a multiple of 8
    rows = torch.arange(h, device=q.device).repeat_interleave(w)
    cols = torch.arange(w, device=q.device).repeat(h)
    key_rows = F.one_hot(rows, h).to(q.dtype).expand(b, heads, n, h)
    key_cols = F.one_hot(cols, w).to(q.dtype).expand(b, heads, n, w)
    q_aug = F.pad(torch.cat([q, bias_h / scale, bias_w / scale], -1), (0, pad))
    k_aug = F.pad(torch.cat([k, key_rows, key_cols], -1), (0, pad))
    v_aug = F.pad(v, (0, width + pad - d))
    return F.scaled_dot_product_attention(q_aug, k_aug, v_aug, scale=scale)[..., :d]


class ViTBlock(nn.Module):
    """Pre-norm transformer block; windowed (``window > 0``) or global attention."""

    def __init__(self, cfg: ViTConfig, window: int) -> None:
        super().__init__()
        dim = cfg.embed_dim
        grid = window if window > 0 else cfg.img_size // cfg.patch_size
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = ViTAttention(dim, cfg.num_heads, cfg.qkv_bias, cfg.use_rel_pos, grid)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = FeedForward(dim, int(dim * cfg.mlp_ratio))
        self.window = window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.window > 0:
            b, h, w, c = x.shape
            padded, hp, wp = pad_to_multiple(x, self.window)
            win = to_windows(padded, self.window).view(-1, self.window, self.window, c)
            win = self.attn(win).view(-1, self.window * self.window, c)
            x = from_windows(win, self.window, b, hp, wp)[:, :h, :w]
        else:
            x = self.attn(x)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, in_chans: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)  # (B, H, W, C)


class ViTImageEncoder(nn.Module):
    """SAM ViT encoder: (B, 3, S, S) normalised image → (B, out_chans, S/16, S/16) embedding."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.img_size = cfg.img_size
        grid = cfg.img_size // cfg.patch_size
        self.patch_embed = PatchEmbed(cfg.patch_size, 3, cfg.embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, cfg.embed_dim))
        self.blocks = nn.ModuleList(
            ViTBlock(cfg, 0 if i in cfg.global_attn_indexes else cfg.window_size) for i in range(cfg.depth)
        )
        self.neck = nn.Sequential(
            nn.Conv2d(cfg.embed_dim, cfg.out_chans, kernel_size=1, bias=False),
            LayerNorm2d(cfg.out_chans),
            nn.Conv2d(cfg.out_chans, cfg.out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(cfg.out_chans),
        )

    def prepare_for_inference(self) -> None:
        """Nothing to fold in a ViT; present so every encoder answers the same call."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.neck(x.permute(0, 3, 1, 2))
