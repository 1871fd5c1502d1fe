"""Fused CPU kernels for inference: oneDNN's convolution/linear with the activation applied in place.

torch ships these as ``torch.ops.mkldnn._convolution_pointwise`` and ``_linear_pointwise`` (what
``torch.compile`` uses on the CPU). Measured here they run a 1×1 convolution + GELU about 1.7× and a
linear layer about 2× faster than the eager pair. They are used only where they apply: CPU, float32
(or bfloat16 inputs and weights alike), no autograd, no autocast; every other case takes the plain
ops, with identical results up to float rounding (under bf16 autocast the plain ops are the ones
autocast lowers to bf16).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_ACT = {None: ("none", ""), "gelu": ("gelu", "none"), "relu": ("relu", "")}


def _available(name: str) -> bool:
    try:
        return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, name)
    except (AttributeError, RuntimeError):
        return False


HAS_CONV = _available("_convolution_pointwise")
HAS_LINEAR = _available("_linear_pointwise")


def _fast(x: torch.Tensor, weight: torch.Tensor) -> bool:
    return (
        not torch.jit.is_tracing()  # exports (TorchScript, OpenVINO) see the plain ops
        and not torch.compiler.is_compiling()  # torch.compile fuses the plain ops itself
        and x.device.type == "cpu"
        and x.dtype == weight.dtype
        and x.dtype in (torch.float32, torch.bfloat16)  # bf16: a bf16 copy of the encoder (bf16_weights)
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
        and not torch.is_autocast_enabled("cpu")  # under bf16 autocast the plain ops run in bf16
    )


def _activate(y: torch.Tensor, act: str | None) -> torch.Tensor:
    if act == "gelu":
        return F.gelu(y)
    if act == "relu":
        return F.relu(y)
    return y


def linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, act: str | None = None
) -> torch.Tensor:
    """``act(x @ weight.T + bias)`` for x of shape (..., in)."""
    if HAS_LINEAR and _fast(x, weight):
        attr, algo = _ACT[act]
        flat = x.reshape(-1, x.shape[-1])
        if not flat.is_contiguous():
            flat = flat.contiguous()
        y = torch.ops.mkldnn._linear_pointwise.default(flat, weight, bias, attr, [], algo)
        return y.view(*x.shape[:-1], weight.shape[0])
    return _activate(F.linear(x, weight, bias), act)


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride,
    padding,
    dilation,
    groups: int,
    act: str | None = None,
) -> torch.Tensor:
    """``act(conv2d(x))``; channels-last in, channels-last out on the fused path."""
    if HAS_CONV and _fast(x, weight):
        attr, algo = _ACT[act]
        return torch.ops.mkldnn._convolution_pointwise.default(
            x, weight, bias, list(padding), list(stride), list(dilation), groups, attr, [], algo
        )
    return _activate(F.conv2d(x, weight, bias, stride, padding, dilation, groups), act)


def apply_linear(module: torch.nn.Linear, x: torch.Tensor, act: str | None = None) -> torch.Tensor:
    """Run an ``nn.Linear`` (and an activation) through :func:`linear`."""
    return linear(x, module.weight, module.bias, act)
