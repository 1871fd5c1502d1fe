"""TinyViT image encoder (MobileSAM and LiteMedSAM), in plain torch.

Two stems: MobileSAM's two 3×3 stride-2 convolutions at 1024 px (stride 4) and LiteMedSAM's two
1×1 stride-1 convolutions at 256 px. Stage 0 is MBConv blocks, stages 1–3 windowed attention with
learned per-offset biases and a depthwise "local" convolution; BatchNorms fold for inference.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from napari_sam.models.fused import apply_linear
from napari_sam.models.layers import (
    ConvBN,
    LayerNorm2d,
    biased_attention,
    from_windows,
    pad_to_multiple,
    to_windows,
)


@dataclass(frozen=True)
class TinyViTConfig:
    """Hyper-parameters of a TinyViT encoder (defaults: MobileSAM's TinyViT-5M at 1024 px)."""

    img_size: int = 1024
    embed_dims: tuple[int, ...] = (64, 128, 160, 320)
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (2, 4, 5, 10)
    window_sizes: tuple[int, ...] = (7, 7, 14, 7)
    mlp_ratio: float = 4.0
    mbconv_expand_ratio: float = 4.0
    local_conv_size: int = 3
    stem: str = "stride4"  # "stride4": 3×3/2 twice (MobileSAM); "stride1": 1×1/1 twice (LiteMedSAM)
    classifier_head: bool = False  # MobileSAM checkpoints still carry the ImageNet head
    out_chans: int = 256

    @property
    def stem_stride(self) -> int:
        return 4 if self.stem == "stride4" else 1


class Stem(nn.Module):
    def __init__(self, dim: int, stem: str) -> None:
        super().__init__()
        if stem not in ("stride4", "stride1"):
            raise ValueError(f"unknown TinyViT stem {stem!r}; expected 'stride4' or 'stride1'")
        k, s, p = (3, 2, 1) if stem == "stride4" else (1, 1, 0)
        self.seq = nn.Sequential(ConvBN(3, dim // 2, k, s, p), nn.GELU(), ConvBN(dim // 2, dim, k, s, p))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq[2](self.seq[0](x, "gelu"))


class MBConv(nn.Module):
    """Inverted residual block on (B, C, H, W)."""

    def __init__(self, dim: int, expand: float) -> None:
        super().__init__()
        hidden = int(dim * expand)
        self.conv1 = ConvBN(dim, hidden, 1)
        self.conv2 = ConvBN(hidden, hidden, 3, 1, 1, groups=hidden)
        self.conv3 = ConvBN(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x, "gelu"), "gelu")
        return F.gelu(self.conv3(y) + x)


class PatchMerging(nn.Module):
    """(B, C, H, W) → (B, C', H/2, W/2), or stride 1 into the widest stages (as the checkpoints do)."""

    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        stride = 1 if out_dim in (320, 448, 576) else 2
        self.conv1 = ConvBN(dim, out_dim, 1)
        self.conv2 = ConvBN(out_dim, out_dim, 3, stride, 1, groups=out_dim)
        self.conv3 = ConvBN(out_dim, out_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.conv2(self.conv1(x, "gelu"), "gelu"))


class WindowAttention(nn.Module):
    """Attention inside square windows of (B, N, C) tokens with a learned bias per |offset|."""

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        cells = list(itertools.product(range(window), range(window)))
        offsets: dict[tuple[int, int], int] = {}
        index = [
            offsets.setdefault((abs(a[0] - b[0]), abs(a[1] - b[1])), len(offsets))
            for a in cells
            for b in cells
        ]
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, len(offsets)))
        self.register_buffer("bias_index", torch.tensor(index).view(len(cells), len(cells)), persistent=False)

    def _bias(self) -> torch.Tensor:
        cached = getattr(self, "_inference_bias", None)
        if cached is not None and not self.training and cached.device == self.attention_biases.device:
            return cached  # (a model moved to another device after preparing gathers again)
        return self.attention_biases[:, self.bias_index]

    def prepare_for_inference(self) -> None:
        """Gather the (heads, N, N) bias once instead of at every call."""
        self._inference_bias = self.attention_biases[:, self.bias_index].detach().contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        x = self.norm(x)
        # The checkpoints lay q, k and v out head by head: (heads, [q | k | v]).
        qkv = apply_linear(self.qkv, x).view(b, n, self.num_heads, 3 * self.head_dim).transpose(1, 2)
        q, k, v = qkv.split(self.head_dim, dim=-1)
        out = biased_attention(q, k, v, self._bias().to(q.dtype))
        return apply_linear(self.proj, out.transpose(1, 2).reshape(b, n, c))


class TokenMLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return apply_linear(self.fc2, apply_linear(self.fc1, self.norm(x), "gelu"))


class TinyViTBlock(nn.Module):
    """Windowed attention, depthwise local convolution, MLP; works on (B, H, W, C)."""

    def __init__(self, dim: int, num_heads: int, window: int, mlp_ratio: float, local_conv: int) -> None:
        super().__init__()
        self.window = window
        self.attn = WindowAttention(dim, num_heads, window)
        self.local_conv = ConvBN(dim, dim, local_conv, 1, local_conv // 2, groups=dim)
        self.mlp = TokenMLP(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        # Padding comes before the attention's own LayerNorm, as in the reference: padded cells are
        # normalised zeros, i.e. the norm's bias, and take part in the attention.
        padded, hp, wp = pad_to_multiple(x, self.window)
        win = self.attn(to_windows(padded, self.window))
        x = x + from_windows(win, self.window, b, hp, wp)[:, :h, :w]
        x = self.local_conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x + self.mlp(x)


class ConvStage(nn.Module):
    def __init__(self, dim: int, depth: int, expand: float, out_dim: int | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(MBConv(dim, expand) for _ in range(depth))
        self.downsample = PatchMerging(dim, out_dim) if out_dim is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) → (B, H', W', C')
        x = x.contiguous(memory_format=torch.channels_last)  # permute to (B, H, W, C) is then free
        for block in self.blocks:
            x = block(x)
        if self.downsample is not None:
            x = self.downsample(x)
        return x.permute(0, 2, 3, 1)


class AttentionStage(nn.Module):
    def __init__(
        self, dim: int, depth: int, heads: int, window: int, cfg: TinyViTConfig, out_dim: int | None
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TinyViTBlock(dim, heads, window, cfg.mlp_ratio, cfg.local_conv_size) for _ in range(depth)
        )
        self.downsample = PatchMerging(dim, out_dim) if out_dim is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, C) → (B, H', W', C')
        for block in self.blocks:
            x = block(x)
        if self.downsample is not None:
            x = self.downsample(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x


class TinyViTImageEncoder(nn.Module):
    """TinyViT encoder: (B, 3, S, S) normalised image → (B, 256, 64, 64) embedding."""

    def __init__(self, cfg: TinyViTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.img_size = cfg.img_size
        dims = cfg.embed_dims
        self.patch_embed = Stem(dims[0], cfg.stem)
        stages: list[nn.Module] = []
        for i, depth in enumerate(cfg.depths):
            out_dim = dims[i + 1] if i + 1 < len(dims) else None
            if i == 0:
                stages.append(ConvStage(dims[0], depth, cfg.mbconv_expand_ratio, out_dim))
            else:
                stages.append(
                    AttentionStage(dims[i], depth, cfg.num_heads[i], cfg.window_sizes[i], cfg, out_dim)
                )
        self.layers = nn.ModuleList(stages)
        if cfg.classifier_head:  # unused for segmentation; kept so MobileSAM checkpoints load strictly
            self.norm_head = nn.LayerNorm(dims[-1])
            self.head = nn.Linear(dims[-1], 1000)
        self.neck = nn.Sequential(
            nn.Conv2d(dims[-1], cfg.out_chans, kernel_size=1, bias=False),
            LayerNorm2d(cfg.out_chans),
            nn.Conv2d(cfg.out_chans, cfg.out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(cfg.out_chans),
        )

    def prepare_for_inference(self) -> None:
        """Fold every BatchNorm into its convolution and cache attention biases (after loading weights)."""
        for module in self.modules():
            if isinstance(module, ConvBN):
                module.fold()
            elif isinstance(module, WindowAttention):
                module.prepare_for_inference()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Channels-last throughout: the (B, H, W, C) token layout and the convolutions then share memory.
        x = self.patch_embed(x.contiguous(memory_format=torch.channels_last))
        for stage in self.layers:
            x = stage(x)
        return self.neck(x.permute(0, 3, 1, 2))
