"""Candidates much larger than the typical object are painted after smaller ones.

Among overlapping candidates the painter keeps the best-ranked (predicted IoU × stability × the other
ranking weights) and drops what it mostly covers. A box around two touching nuclei, or a nucleus and its
halo, often gets a confident answer that outranks the single nuclei under it. So a candidate whose area
exceeds ``allowance`` × the typical object's area ranks lower in proportion: its weight is
``allowance / (area / typical)``. The typical area is the median area of the examples' own answers when
the user gave examples, else of the answers to typical-sized proposals that pass the score bar
(:mod:`~napari_sam.automatic.score_bar`).

Measured on the seven 512² nuclei variants (``/tmp/s17/sizew_noex.py``, ``/tmp/s17/sizew.py``): without
examples, at allowance 1.25, F1 rose on all seven (original 0.915 → 0.941, uneven 0.817 → 0.851, 2×
down 0.822 → 0.839; the others by 0.005–0.010); with five ground-truth examples (five draws), 34 of 35
rose or held (low SNR in one draw 0.858 → 0.851), 2× down 0.823–0.852 → 0.842–0.876. On synthetic scenes
mixing objects of two sizes (radius 7 and 22 px) F1 held in four of six and fell by 0.009 and 0.014 in
two (``/tmp/s17/mixed.py``); there the large objects were mostly missed with or without it.

A whole that the seams vouch for (pieces inside it, no seam between them:
:func:`~napari_sam.automatic.clusters.mask_roles`) is one object however large, and
:func:`~napari_sam.automatic.box_mode.select` does not lower its rank; with that, and large masks that are
one blob at their own scale no longer counted as merges, the large objects of those scenes are found
(``docs/automatic.md``).
"""

from __future__ import annotations

import numpy as np

LARGER_ALLOWANCE = 1.25  # areas up to this many typical objects rank as they are


def size_weights(areas: np.ndarray, typical_area: float, allowance: float = LARGER_ALLOWANCE) -> np.ndarray:
    """(N,) float32 ranking weights in (0, 1]: 1 up to ``allowance`` × ``typical_area`` (pixels), then
    ``allowance / (area / typical_area)``. All ones when ``typical_area`` is not positive.
    """
    areas = np.asarray(areas, dtype=np.float64)
    if not typical_area > 0:
        return np.ones(len(areas), np.float32)
    ratio = areas / float(typical_area)
    return np.where(ratio > allowance, allowance / np.maximum(ratio, 1e-12), 1.0).astype(np.float32)


def typical_area(areas: np.ndarray, reference: np.ndarray) -> float:
    """The median of ``areas`` (N,) over the bool ``reference`` (N,); 0.0 when it selects none."""
    areas = np.asarray(areas, dtype=np.float64)
    chosen = areas[np.asarray(reference, bool)]
    return float(np.median(chosen)) if chosen.size else 0.0
