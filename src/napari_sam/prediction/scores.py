"""Scores of predicted masks shared by the automatic mode and stack propagation."""

from __future__ import annotations

import numpy as np


def stability_score(logits: np.ndarray, threshold: float = 0.0, offset: float = 1.0) -> np.ndarray:
    """IoU between the masks thresholded at ``threshold + offset`` and ``threshold - offset``.

    ``logits`` is (..., h, w); returns (...,) float32 (0 where the mask is empty even at the lower level).
    """
    x = np.asarray(logits)
    hi = (x > threshold + offset).sum(axis=(-2, -1))
    lo = (x > threshold - offset).sum(axis=(-2, -1))
    return np.where(lo > 0, hi / np.maximum(lo, 1), 0.0).astype(np.float32)


def relative_stability_score(logits: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    """:func:`stability_score` with the offset at ``fraction`` of each mask's largest |logit|.

    SAM's fixed offset of 1 logit assumes SAM's logit scale (tens); some networks answer on a much
    smaller one (LiteMedSAM's three multimask outputs stay within about ±0.5, so every mask would score
    0). Measuring the offset against the mask's own logits makes the score comparable across outputs
    and models. ``logits`` is (..., h, w); returns (...,) float32.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1); got {fraction}")
    x = np.asarray(logits, dtype=np.float32)
    scale = np.abs(x).max(axis=(-2, -1), keepdims=True)
    return stability_score(x / np.maximum(scale, 1e-12), 0.0, fraction)
