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
