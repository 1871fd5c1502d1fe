"""Model inputs from windows of a prepared image, and mask logits back to image pixels."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from napari_sam.geometry.windows import Window
from napari_sam.models.registry import ModelSpec


def resized_extent(
    window: Window, image_shape: tuple[int, int], input_size: int
) -> tuple[int, int, int, int]:
    """(h, w) of the window's part inside the image, and its (rh, rw) in model pixels."""
    h = min(window.row0 + window.size, image_shape[0]) - window.row0
    w = min(window.col0 + window.size, image_shape[1]) - window.col0
    scale = window.scale(input_size)
    return h, w, max(1, min(input_size, int(h * scale + 0.5))), max(1, min(input_size, int(w * scale + 0.5)))


def resize_chw(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (B, C, h, w); antialiased only when shrinking by more than 2×."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = min(size[0] / x.shape[-2], size[1] / x.shape[-1])
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink < 0.5)


def normalise(rgb255: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """(B, 3, h, w) in [0, 255] → the model's normalisation."""
    mean = torch.tensor(spec.pixel_mean, dtype=rgb255.dtype, device=rgb255.device)[:, None, None]
    std = torch.tensor(spec.pixel_std, dtype=rgb255.dtype, device=rgb255.device)[:, None, None]
    return (rgb255 - mean) / std


def logits_to_window_masks(
    logits: torch.Tensor,
    window: Window,
    image_shape: tuple[int, int],
    input_size: int,
    threshold: float = 0.0,
) -> np.ndarray:
    """(B, M, 256, 256) low-res logits → (B, M, h, w) bool masks over the window's part of the image.

    As SAM does: upsample to S×S, drop the padding, resize to the window's pixels, threshold.
    """
    h, w, rh, rw = resized_extent(window, image_shape, input_size)
    up = logits.float()
    if tuple(up.shape[-2:]) != (input_size, input_size):  # LiteMedSAM's logits are already S×S
        up = F.interpolate(up, size=(input_size, input_size), mode="bilinear", align_corners=False)
    up = up[..., :rh, :rw]
    if (rh, rw) != (h, w):
        up = F.interpolate(up, size=(h, w), mode="bilinear", align_corners=False)
    return (up > threshold).cpu().numpy()
