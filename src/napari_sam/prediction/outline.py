"""Whether a mask's outline lies on an edge of the image: the contrast across it.

A click's box is searched at the scale of a typical object (:mod:`napari_sam.prediction.progressive`).
A click on an object several times that size (a large nucleus among small ones) may then find a piece
of it: a mask whose outline runs through the object's inside, with as much signal just outside the
outline as just inside it. The contrast across the outline tells the two apart: the median of a band
of pixels just inside the mask minus the median of a band just outside it, relative to the region's
1–99 % range. Its sign is the objects' polarity (bright objects: positive), its magnitude whether the
outline lies on an edge. Measured on the answers to clicks on the innermost pixels of 40 nuclei of five
images (original, H&E-like, low SNR, inverted and mixed sizes; ``/tmp/s20/rim.py``, objects-bright
image): the pieces of large nuclei and one half-found dim nucleus gave −0.003–0.017, every answer with
IoU ≥ 0.5 gave 0.069 or more.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

WEAK_OUTLINE = 0.04  # |contrast| under which an outline is taken to run through the object


def outline_contrast(gray: np.ndarray, mask: np.ndarray, offset: tuple[int, int]) -> float:
    """Contrast across the outline of ``mask``, relative to the range of ``gray``.

    Parameters
    ----------
    gray
        (H, W) float image of the region (display gray, or the objects-bright image).
    mask
        (h, w) bool mask crop; its top-left pixel is at ``offset`` = (row, col) of ``gray`` (it may
        reach beyond ``gray``). The bands are an eighth of the mask's longest side wide, at least 2
        pixels.

    Returns
    -------
    float
        (median of the inner band − median of the outer band) / (99th − 1st percentile of ``gray``):
        positive for a mask brighter than its surroundings, negative for a darker one, near 0 for an
        outline that runs through a uniform region; 0.0 for an empty mask, a mask outside the region or
        a flat region.
    """
    h, w = gray.shape
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return 0.0
    extent = max(rows.max() - rows.min(), cols.max() - cols.min()) + 1
    width = max(2, int(round(extent / 8)))
    pad = width + 1
    r, c = int(offset[0]), int(offset[1])
    r0, c0 = max(r + int(rows.min()) - pad, 0), max(c + int(cols.min()) - pad, 0)
    r1, c1 = min(r + int(rows.max()) + pad + 1, h), min(c + int(cols.max()) + pad + 1, w)
    if r0 >= r1 or c0 >= c1:
        return 0.0
    full = np.zeros((r1 - r0, c1 - c0), dtype=bool)
    rr, cc = rows + r - r0, cols + c - c0
    keep = (rr >= 0) & (rr < full.shape[0]) & (cc >= 0) & (cc < full.shape[1])
    full[rr[keep], cc[keep]] = True
    inner = full & ~ndi.binary_erosion(full, iterations=width, border_value=1)
    outer = ndi.binary_dilation(full, iterations=width) & ~full
    lo, hi = np.percentile(gray, [1, 99])
    if not inner.any() or not outer.any() or hi <= lo:
        return 0.0
    patch = gray[r0:r1, c0:c1]
    return float(np.median(patch[inner]) - np.median(patch[outer])) / float(hi - lo)
