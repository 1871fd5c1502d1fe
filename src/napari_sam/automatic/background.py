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
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from napari_sam.automatic.scale import pixel_noise


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
