"""Does a candidate mask stand out of its immediate surroundings, or is it cut from inside an object?

Box proposals split objects at several scales, and the model answers a box around half a nucleus with a
confident mask of that half. Its predicted IoU and stability do not tell it from the whole nucleus, but
the image does: just outside a whole object lies background, just outside a fragment lies the rest of
its object. Biologists judge an outline the same way.

For every mask, on the proposals' bright-objects image smoothed by a tenth of the object diameter:

* ``inside``: the mean over the mask;
* ``ring``: the 75th percentile over a ring ``width`` pixels wide just outside it (the brightest quarter
  of the ring, so a fragment bordering its object on one side only still shows it);
* ``background``: the image's median.

The edge ratio ``(inside - ring) / (inside - background)`` is about 1 for an object on a clear
background and near 0 for a fragment. The ranking weight is ``clip(ratio / full_weight_ratio, floor,
1)``: masks whose surroundings are darker by at least ``full_weight_ratio`` of their contrast keep their
rank, others are painted later, so that where a fragment and its whole object compete, the whole one
wins.

Measured on the nuclei variants (F1 at IoU 0.5, LiteMedSAM, ranking weight on vs off, same candidates):
original 0.884 / 0.884, inverted 0.815 / 0.803, H&E 0.812 / 0.809, 2× down 0.660 / 0.651, 4× down
0.743 / 0.745, low SNR 0.730 / 0.695, uneven illumination 0.676 / 0.655.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from napari_sam.automatic.filters import Candidates


def smoothed_objects(bright: np.ndarray, diameter: float) -> tuple[np.ndarray, float]:
    """The objects-bright image smoothed by a tenth of the object diameter (at least 1 pixel), and its
    median as the background level: (H, W) float32 and a float.
    """
    smooth = ndi.gaussian_filter(np.asarray(bright, dtype=np.float32), max(1.0, diameter / 10.0))
    return smooth, float(np.median(smooth))


def edge_ratios(cands: Candidates, bright: np.ndarray, diameter: float, width: int = 3) -> np.ndarray:
    """(N,) float edge ratio of every candidate (see the module's description).

    Parameters
    ----------
    cands
        Candidate masks as crops in the frame of ``bright``.
    bright
        (H, W) float image with the objects bright (the one the proposals read).
    diameter
        Typical object diameter in pixels (sets the smoothing: a tenth of it, at least 1 pixel).
    width
        Ring width in pixels.
    """
    smooth, background = smoothed_objects(bright, diameter)
    h, w = smooth.shape
    out = np.zeros(len(cands), dtype=np.float64)
    pad = width + 1
    for i, (mask, (r, c)) in enumerate(zip(cands.masks, cands.offsets)):
        if not mask.any():
            continue
        r0, c0 = max(int(r) - pad, 0), max(int(c) - pad, 0)
        r1, c1 = min(int(r) + mask.shape[0] + pad, h), min(int(c) + mask.shape[1] + pad, w)
        full = np.zeros((r1 - r0, c1 - c0), dtype=bool)
        full[r - r0 : r - r0 + mask.shape[0], c - c0 : c - c0 + mask.shape[1]] = mask
        ring = ndi.binary_dilation(full, iterations=width) & ~full
        patch = smooth[r0:r1, c0:c1]
        inside = float(patch[full].mean())
        if not ring.any() or inside <= background:
            continue
        out[i] = (inside - float(np.percentile(patch[ring], 75))) / (inside - background)
    return out


def edge_weights(
    cands: Candidates,
    bright: np.ndarray,
    diameter: float,
    *,
    full_weight_ratio: float = 0.3,
    floor: float = 0.3,
) -> np.ndarray:
    """(N,) float32 ranking weights in [``floor``, 1] from :func:`edge_ratios`."""
    if full_weight_ratio <= 0 or not 0 <= floor <= 1:
        raise ValueError(
            f"full_weight_ratio must be positive and floor in [0, 1]; got {full_weight_ratio}, {floor}"
        )
    ratios = edge_ratios(cands, bright, diameter)
    return np.clip(ratios / full_weight_ratio, floor, 1.0).astype(np.float32)
