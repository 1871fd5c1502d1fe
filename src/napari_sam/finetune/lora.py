"""Low-rank adapters (LoRA) on the image encoder's attention: ``W + (alpha / r) · B A`` on every ``qkv``
projection, trained while ``W`` stays frozen, then merged into ``W`` (the saved checkpoint has the base
architecture's keys and shapes, so it loads like any other).

The adapter is a weight parametrization, so the encoder's own code (which reads ``module.weight``
directly for its fused kernels) sees the adapted weight without changes.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parametrize


class LowRankDelta(nn.Module):
    """``weight ↦ weight + scale · B @ A`` with A (r, in) random and B (out, r) zero (starts as identity)."""

    def __init__(self, out_features: int, in_features: int, rank: int, alpha: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.empty(rank, in_features))
        self.b = nn.Parameter(torch.zeros(out_features, rank))
        nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))
        self.scale = alpha / rank

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.scale * (self.b @ self.a).to(weight.dtype)


def attention_projections(encoder: nn.Module) -> list[nn.Linear]:
    """The ``qkv`` linear layers of the encoder's attention blocks (TinyViT and ViT alike)."""
    return [m.qkv for m in encoder.modules() if isinstance(getattr(m, "qkv", None), nn.Linear)]


def add_adapters(encoder: nn.Module, rank: int = 4, alpha: float = 4.0) -> list[nn.Parameter]:
    """Put a :class:`LowRankDelta` on every attention projection; returns the new trainable parameters."""
    layers = attention_projections(encoder)
    if not layers:
        raise ValueError("this image encoder has no attention projections (qkv) to adapt")
    params: list[nn.Parameter] = []
    for layer in layers:
        delta = LowRankDelta(layer.out_features, layer.in_features, rank, alpha).to(layer.weight.device)
        parametrize.register_parametrization(layer, "weight", delta)
        params += [delta.a, delta.b]
    return params


def adapter_state(encoder: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the adapters' A and B matrices (to keep the best ones)."""
    return {
        name: p.detach().clone()
        for name, p in encoder.named_parameters()
        if name.endswith(".original") is False and ".parametrizations." in name
    }


def load_adapter_state(encoder: nn.Module, state: dict[str, torch.Tensor]) -> None:
    params = dict(encoder.named_parameters())
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value)


def merge_adapters(encoder: nn.Module) -> None:
    """Fold every adapter into its weight and remove the parametrization (plain ``nn.Linear`` again)."""
    for layer in attention_projections(encoder):
        if parametrize.is_parametrized(layer, "weight"):
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)
