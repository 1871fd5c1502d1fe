"""Small building blocks shared by the encoders, the prompt encoder and the mask decoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from napari_sam.models.fused import apply_linear
from napari_sam.models.fused import conv2d as fused_conv2d


class LayerNorm2d(nn.Module):
    """Layer normalisation over the channel axis of a (B, C, H, W) tensor."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalising a channels-last view lets torch use its fused layer-norm kernel.
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


class FeedForward(nn.Module):
    """Two linear layers with an activation between them (names as in the SAM checkpoints)."""

    def __init__(self, dim: int, hidden: int, act: str = "gelu") -> None:
        super().__init__()
        if act not in ("gelu", "relu"):
            raise ValueError(f"unsupported activation {act!r}")
        self.lin1 = nn.Linear(dim, hidden)
        self.lin2 = nn.Linear(hidden, dim)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return apply_linear(self.lin2, apply_linear(self.lin1, x, self.act))


class StackedLinear(nn.Module):
    """``depth`` linear layers with ReLU between them, optionally a sigmoid at the end."""

    def __init__(
        self, dim_in: int, hidden: int, dim_out: int, depth: int, sigmoid_output: bool = False
    ) -> None:
        super().__init__()
        dims = [dim_in] + [hidden] * (depth - 1) + [dim_out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.sigmoid_output = sigmoid_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = apply_linear(layer, x, "relu" if i < last else None)
        return torch.sigmoid(x) if self.sigmoid_output else x


class ConvBN(nn.Module):
    """Convolution without bias followed by BatchNorm, foldable into one convolution for inference.

    The state-dict keys stay ``c.*`` and ``bn.*`` (as in the TinyViT checkpoints); :meth:`fold` stores
    the folded kernel in non-persistent buffers, so saving and strict loading are unaffected.
    """

    def __init__(
        self, cin: int, cout: int, kernel: int = 1, stride: int = 1, padding: int = 0, groups: int = 1
    ) -> None:
        super().__init__()
        self.c = nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.register_buffer("folded_weight", None, persistent=False)
        self.register_buffer("folded_bias", None, persistent=False)

    @torch.no_grad()
    def fold(self) -> None:
        """Fold the BatchNorm statistics into the convolution (inference only)."""
        scale = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)
        self.folded_weight = self.c.weight * scale[:, None, None, None]
        self.folded_bias = self.bn.bias - self.bn.running_mean * scale

    def unfold(self) -> None:
        self.folded_weight = None
        self.folded_bias = None

    def forward(self, x: torch.Tensor, act: str | None = None) -> torch.Tensor:
        """Convolution, BatchNorm and optionally ``act`` ("gelu"), fused into one kernel once folded."""
        if self.folded_weight is not None and not self.training:
            return fused_conv2d(
                x,
                self.folded_weight,
                self.folded_bias,
                self.c.stride,
                self.c.padding,
                self.c.dilation,
                self.c.groups,
                act,
            )
        y = self.bn(self.c(x))
        return F.gelu(y) if act == "gelu" else y


def pad_to_multiple(x: torch.Tensor, window: int) -> tuple[torch.Tensor, int, int]:
    """Zero-pad a (B, H, W, C) tensor at the bottom and right so H and W divide by ``window``."""
    h, w = x.shape[1], x.shape[2]
    pad_h = (window - h % window) % window
    pad_w = (window - w % window) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    return x, h + pad_h, w + pad_w


def to_windows(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, Hp, Wp, C) with Hp, Wp multiples of ``window`` → (B·nH·nW, window·window, C)."""
    b, hp, wp, c = x.shape
    x = x.view(b, hp // window, window, wp // window, window, c).transpose(2, 3)
    return x.reshape(-1, window * window, c)


def from_windows(x: torch.Tensor, window: int, b: int, hp: int, wp: int) -> torch.Tensor:
    """Inverse of :func:`to_windows`: (B·nH·nW, window·window, C) → (B, Hp, Wp, C)."""
    c = x.shape[-1]
    x = x.view(b, hp // window, wp // window, window, window, c).transpose(2, 3)
    return x.reshape(b, hp, wp, c)


def biased_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """softmax(q·kᵀ/√d + bias)·v for (B, heads, N, d) tensors and a bias broadcastable to (B, heads, N, N).

    On the CPU, scaled_dot_product_attention with a float mask takes a slow generic path; a matmul, an
    in-place scale-and-add and a softmax are faster and give the same numbers.
    """
    if q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    scores = torch.matmul(q, k.transpose(-2, -1))
    scores.mul_(q.shape[-1] ** -0.5).add_(bias)
    return torch.matmul(torch.softmax(scores, dim=-1), v)
