"""Embedding features of candidate objects, and a prototype of example objects to compare them with.

An object's feature is the mean of the image encoder's tokens under its mask (the window embedding it
was decoded from, each token weighted by how many of the object's pixels fall in it). The prototype
of a few example objects is the mean of their unit-length features; a candidate is "like the
examples" when its cosine similarity to the prototype is at least about as high as the examples' own
(:func:`similarity_floor`). This is what lets "like these" tell nuclei from the bright gaps between
them, or one cell type from another of the same size, where size and polarity cannot.
"""

from __future__ import annotations

import numpy as np
import torch

from napari_sam.geometry.coords import image_to_model_xy
from napari_sam.geometry.windows import Window


def pool_feature(
    embedding: torch.Tensor,
    window: Window,
    input_size: int,
    mask: np.ndarray,
    offset: tuple[int, int],
) -> np.ndarray:
    """(C,) float32 mean of ``embedding``'s tokens under ``mask``, weighted by the mask's pixels per token.

    Parameters
    ----------
    embedding
        (1, C, h, w) embedding of ``window``.
    window
        The window (image pixels) the embedding was computed from.
    input_size
        The model's input side S (the token grid covers S × S model pixels).
    mask
        (mh, mw) bool crop of the object.
    offset
        (row, col) of the crop's top-left pixel in the image.
    """
    c, gh, gw = embedding.shape[-3:]
    rows = np.arange(offset[0], offset[0] + mask.shape[0])
    cols = np.arange(offset[1], offset[1] + mask.shape[1])
    scale = window.scale(input_size)
    origin = (window.row0, window.col0)
    y = image_to_model_xy(np.stack([rows, np.zeros_like(rows)], 1), origin, scale)[:, 1]
    x = image_to_model_xy(np.stack([np.zeros_like(cols), cols], 1), origin, scale)[:, 0]
    ty = np.clip(((y + 0.5) * gh / input_size).astype(np.int64), 0, gh - 1)
    tx = np.clip(((x + 0.5) * gw / input_size).astype(np.int64), 0, gw - 1)
    rr, cc = np.nonzero(mask)
    if rr.size == 0:
        return np.zeros(c, dtype=np.float32)
    weights = np.bincount(ty[rr] * gw + tx[cc], minlength=gh * gw).astype(np.float32)
    used = np.flatnonzero(weights)
    tokens = embedding[0].reshape(c, gh * gw)[:, torch.as_tensor(used)].float().cpu().numpy()
    w = weights[used]
    return (tokens @ w / w.sum()).astype(np.float32)


def unit(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    f = np.asarray(features, dtype=np.float32)
    norm = np.linalg.norm(f, axis=-1, keepdims=True)
    return f / np.maximum(norm, 1e-12)


def prototype(example_features: np.ndarray) -> np.ndarray:
    """(C,) unit prototype: the normalised mean of the examples' unit features ((K, C))."""
    if len(example_features) == 0:
        raise ValueError("a prototype needs at least one example feature")
    return unit(unit(example_features).mean(axis=0))


def similarity(features: np.ndarray, proto: np.ndarray) -> np.ndarray:
    """(N,) cosine similarity of (N, C) features to a unit prototype."""
    return unit(features) @ proto


# The least spread the floor assumes. A few examples that happen to look alike spread far less than their
# class: the leave-one-out similarities of 3–5 nuclei drawn at random spread 0.016–0.049 in one draw of
# ten (10th percentile, four variants of the stardist nuclei, LiteMedSAM), of 8 nuclei a median
# 0.075–0.105, while a twentieth of all nuclei sit 0.56–0.71 from the prototype of them all.
MIN_SPREAD = 0.1


def similarity_floor(
    example_features: np.ndarray, slack: float = 1.5, min_spread: float = MIN_SPREAD
) -> float:
    """The lowest similarity a candidate may have: the examples' own leave-one-out similarities to the
    prototype of the others, their minimum minus ``slack`` × their spread (standard deviation, at least
    ``min_spread``: a handful of examples underestimates its class's spread). One example gives no
    spread: ``slack`` × ``min_spread`` below its similarity to itself (1).
    """
    f = unit(example_features)
    k = len(f)
    if k < 2:
        return float(1.0 - slack * min_spread)
    total = f.sum(axis=0)
    loo = np.array([float(unit(total - f[i]) @ f[i]) for i in range(k)])
    spread = max(float(loo.std()), min_spread)
    return float(loo.min() - slack * spread)
