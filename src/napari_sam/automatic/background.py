"""Background subtraction and flat-field correction of the image that proposals are read from.

Only the proposals see this image; the model is always given the original pixels. With the objects
bright and their typical diameter d known:

1. background: a grey opening with a square of side 2d (removes everything the size of an object or
   smaller), smoothed with σ = d — the slowly varying floor (offsets, autofluorescence, stain haze);
2. flat field: the local contrast, a Gaussian (σ = 2d) of the background-free image's maximum over 3d
   windows, floored at a quarter of its 99th percentile and at 6 × the noise of the smoothed image (so
   that empty, noisy regions are not blown up to the objects' contrast); the background-free image is
   divided by it.

Both scales follow the objects, so a field varying over a few object diameters (×0.3 to ×1 across the
image) leaves the objects' contrast within a factor of about 1.5 of each other.

Whether to flatten is decided per image (:func:`needs_flattening`): the scale-space blobs of object size
(:mod:`~napari_sam.automatic.scale`, found whatever their brightness) should lie in the foreground the
proposals threshold. Where a global threshold leaves many of them out (objects in the dim part of an
unevenly lit image) and the flattened image's foreground holds them, the proposals read the flattened
image. Measured share of strong blobs left out (global threshold / flattened), nuclei variants:
original 0.05 / 0.05, inverted 0.05 / 0.05, H&E 0.05 / 0.06, 2× down 0.04 / 0.04, 4× down 0.12 / 0.12,
low SNR 0.08 / 0.15, uneven illumination 0.29 / 0.12 (only that one is flattened).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from napari_sam.automatic.scale import blob_peaks, pixel_noise, reduce_image

MISSED_BLOBS_TO_FLATTEN = 0.2  # flatten when the global foreground leaves out more of the blobs than this


def subtract_background(bright: np.ndarray, diameter: float) -> np.ndarray:
    """(H, W) float32 ``bright`` minus its smooth background (see the module's description)."""
    x = np.asarray(bright, dtype=np.float32)
    size = int(max(3, round(2 * diameter)))
    floor = ndi.grey_opening(x, size=(size, size), mode="reflect")
    floor = ndi.gaussian_filter(floor, max(1.0, diameter))
    return x - floor


def flat_field(foreground: np.ndarray, diameter: float, noise: float) -> np.ndarray:
    """(H, W) float32 local contrast of a background-free image, floored as the module describes."""
    size = int(max(3, round(3 * diameter)))
    env = ndi.gaussian_filter(ndi.maximum_filter(foreground, size=size), max(1.0, 2 * diameter))
    floor = max(0.25 * float(np.percentile(env, 99)), 6.0 * noise, 1e-6)
    return np.maximum(env, floor)


def flatten(bright: np.ndarray, diameter: float) -> np.ndarray:
    """Background-subtracted, flat-fielded (H, W) float32 image for proposals (objects about 1)."""
    x = np.asarray(bright, dtype=np.float32)
    if diameter <= 0 or float(np.ptp(x)) == 0.0:
        return np.zeros_like(x)
    fg = subtract_background(x, diameter)
    sigma = max(0.5, diameter / 10)
    # white pixel noise of standard deviation s has s / (2 √π σ) after a Gaussian of σ
    noise = pixel_noise(x) / (2.0 * np.sqrt(np.pi) * sigma)
    return fg / flat_field(ndi.gaussian_filter(fg, sigma), diameter, noise)


def _blob_centres(bright: np.ndarray, diameter: float) -> np.ndarray:
    """(N, 2) int (row, col) centres of the strong blobs of object size (radius diameter/4 to diameter)."""
    g, f = reduce_image(bright)
    if min(g.shape) < 8 or float(np.ptp(g)) == 0.0:
        return np.zeros((0, 2), dtype=np.int64)
    centres, sigmas, strength = blob_peaks(g)
    sigmas = sigmas * f
    ok = strength >= 8.0
    if ok.any():
        ok &= strength >= np.percentile(strength[ok], 90) / 4.0
    ok &= (sigmas >= diameter / 4.0) & (sigmas <= diameter)
    h, w = np.shape(bright)
    rows = np.minimum(centres[ok, 0] * f + f // 2, h - 1)
    cols = np.minimum(centres[ok, 1] * f + f // 2, w - 1)
    return np.stack([rows, cols], 1).astype(np.int64)


def needs_flattening(bright: np.ndarray, diameter: float, sigma: float) -> tuple[bool, dict]:
    """Whether the proposals should read the flattened image, and the evidence.

    Parameters
    ----------
    bright
        (H, W) image with the objects bright.
    diameter
        The proposals' object diameter in pixels.
    sigma
        The proposals' smoothing before thresholding (pixels).

    Returns
    -------
    decision
        True when the global (Otsu) foreground leaves out more than
        :data:`MISSED_BLOBS_TO_FLATTEN` of the strong blobs of object size and the flattened image's
        foreground leaves out at most 0.6 times as many.
    evidence
        ``{"blobs": N, "blobs_missed": share, "blobs_missed_flat": share}`` (shares rounded).
    """
    from napari_sam.automatic.proposals import foreground_mask

    x = np.asarray(bright, dtype=np.float32)
    centres = _blob_centres(x, diameter)
    if diameter <= 0 or len(centres) < 5:
        return False, {"blobs": int(len(centres))}
    _, fg, _ = foreground_mask(x, sigma)
    missed = 1.0 - float(fg[centres[:, 0], centres[:, 1]].mean())
    evidence = {"blobs": int(len(centres)), "blobs_missed": round(missed, 3)}
    if missed <= MISSED_BLOBS_TO_FLATTEN:
        return False, evidence
    _, fg_flat, _ = foreground_mask(flatten(x, diameter), sigma)
    missed_flat = 1.0 - float(fg_flat[centres[:, 0], centres[:, 1]].mean())
    evidence["blobs_missed_flat"] = round(missed_flat, 3)
    return missed_flat <= 0.6 * missed, evidence
