"""Where each object's outline lies: the model's logit level whose rim sits on the image's edge.

The model's masks at logit 0 fit sharp objects, but dim, blurred or noisy ones come out too tight.
Answering the ground-truth boxes with the zoom rule, the masks hold a median 0.71–0.82 of the true area
on two synthetic anisotropic stacks with exact geometric ground truth, 0.94 on the 2× down-scaled nuclei
and 0.87 at low SNR, against 1.01 on the sharp original (``/tmp/s16/thr.py``, ``/tmp/s16/thr3d.py``).
One lower level for every object over-reaches on sharp images instead: at logit -1 the nuclei F1 fell
0.915 → 0.890 as objects swallowed the gaps and unfound neighbours beside them.

A biologist puts an outline where the intensity falls most steeply from the object to its
surroundings; so does :func:`edge_extents`, per object. Among the object's masks at ``LEVELS`` (nested:
its own mask at 0, then lower levels, each holding it) it keeps the one whose rim has the steepest
mean outward fall of the objects-bright image (:func:`rim_fall`). The fall is the image's derivative
along the outward normal of the logits' level sets, so texture inside the object, which has no
preferred direction, averages out; the rim is the pixels on both sides of the outline, so an outline
on a sharp step stays where it is. A lower level must beat the object's own mask by ``WIDER_GAIN``
(5 %), so that noise alone does not move an outline. The wider mask is an *extent*: the painter grows
the object into those of its pixels no other object holds
(:func:`~napari_sam.automatic.filters.paint_labels`); which objects are kept, and in what order, is
decided on the model's own masks as before.

Measured (LiteMedSAM, bf16, 2 cores; ``benchmarks/bench_automatic.py --gt-boxes``), ground-truth-box
mIoU own mask → outlined: original 0.805 → 0.827, 2× down 0.743 → 0.765, 4× down 0.746 → 0.768, low
SNR 0.695 → 0.743, H&E-like 0.806 → 0.816. F1 of segment everything is in ``docs/automatic.md``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from napari_sam.automatic.filters import Candidates, clean_mask

LEVELS: tuple[float, ...] = (-0.5, -1.0, -1.5, -2.0, -2.5, -3.0)  # tried below the model's own 0
WIDER_GAIN = 1.05  # a wider outline's rim must fall this much more steeply than the own mask's


def edge_derivatives(bright: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """(2, H, W) float32 row and column derivatives of the objects-bright image ``bright`` (H, W),
    Gaussian-smoothed by ``sigma`` pixels.
    """
    img = np.asarray(bright, dtype=np.float32)
    return np.stack(
        [ndi.gaussian_filter(img, sigma, order=(1, 0)), ndi.gaussian_filter(img, sigma, order=(0, 1))]
    )


def outward_fall(logits: np.ndarray, derivatives: np.ndarray) -> np.ndarray:
    """(h, w) float32 fall of the image along the outward normal of the logits' level sets.

    Parameters
    ----------
    logits
        (h, w) the model's logits over a crop (high inside the object).
    derivatives
        (2, h, w) row and column derivatives of the objects-bright image over the same crop.

    Returns
    -------
    numpy.ndarray
        Minus the image's derivative along minus the logits' gradient (outwards from the object):
        positive where the image falls from the object outwards.
    """
    g_r, g_c = np.gradient(np.asarray(logits, dtype=np.float32))
    return (derivatives[0] * g_r + derivatives[1] * g_c) / (np.hypot(g_r, g_c) + 1e-6)


def rim_fall(mask: np.ndarray, fall: np.ndarray) -> float:
    """Mean of ``fall`` (h, w) over the rim of ``mask`` (h, w) bool: its pixels with a neighbour outside
    it (the crop's border counts as inside); 0 for an empty mask.
    """
    rim = ndi.binary_dilation(mask) & ~ndi.binary_erosion(mask, border_value=1)
    return float(fall[rim].mean()) if rim.any() else 0.0


def edge_extents(
    cands: Candidates,
    derivatives: np.ndarray,
    levels: tuple[float, ...] = LEVELS,
    gain: float = WIDER_GAIN,
) -> list[np.ndarray]:
    """Per candidate, its mask or the wider mask at one of ``levels`` whose rim lies on the steeper edge.

    Parameters
    ----------
    cands
        Candidates with ``logits`` (the model's float16 logits over each mask's crop).
    derivatives
        (2, H, W) :func:`edge_derivatives` of the whole image.
    levels
        Logit levels below 0 to try.
    gain
        A wider mask is taken only when its :func:`rim_fall` exceeds ``gain`` × the own mask's (and
        then the steepest of them).

    Returns
    -------
    list of numpy.ndarray
        One (h_i, w_i) bool crop per candidate, at the candidate's offset, holding its mask.
    """
    if cands.logits is None:
        raise ValueError("edge_extents needs the candidates' logits (box_candidates with edge_outlines)")
    out = []
    for mask, logits, (r, c) in zip(cands.masks, cands.logits, cands.offsets):
        falls = outward_fall(logits, derivatives[:, r : r + mask.shape[0], c : c + mask.shape[1]])
        best, bar = mask, gain * rim_fall(mask, falls)
        for level in levels:
            wider = clean_mask(logits > level) | mask
            fall = rim_fall(wider, falls)
            if fall > bar:
                best, bar = wider, fall
        out.append(best)
    return out
