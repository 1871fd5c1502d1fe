"""The typical object size of an image, from its scale-space blobs (scale-normalised Laplacian of Gaussian).

A bright round object of radius r gives the strongest response of ``-σ² ∇²G_σ * image`` at its centre
at a scale proportional to r, whatever its brightness or the threshold one would pick. Each response is
compared with what the image's pixel noise alone would give at that scale (white noise of standard
deviation s_n gives a response of standard deviation s_n / (√(2π) σ)), so noise, strongest at the
smallest scales, is told apart from objects. In these units (a matched filter against white noise) a
uniform disk of radius r responds most at σ = r, so the median scale of the strong blob peaks gives
the diameter ``2σ``.

The responses are computed in the Fourier domain (one transform of the mirror-padded image, one
inverse per scale), so the cost hardly grows with σ.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

MAX_SIDE = 384  # larger images are estimated from a block-mean reduced copy


def reduce_image(gray: np.ndarray, max_side: int = MAX_SIDE) -> tuple[np.ndarray, int]:
    """Block-mean reduced copy of an (H, W) image (longer side at most ``max_side``) and the factor."""
    f = int(np.ceil(max(gray.shape) / max_side))
    if f <= 1:
        return np.asarray(gray, dtype=np.float32), 1
    h, w = (gray.shape[0] // f) * f, (gray.shape[1] // f) * f
    g = np.asarray(gray[:h, :w], dtype=np.float32)
    return g.reshape(h // f, f, w // f, f).mean(axis=(1, 3)), f


def pixel_noise(gray: np.ndarray) -> float:
    """Robust standard deviation of the pixel noise (median absolute difference of neighbours / √2)."""
    x = np.asarray(gray, dtype=np.float32)
    d = np.concatenate([(x[:, 1:] - x[:, :-1]).ravel(), (x[1:, :] - x[:-1, :]).ravel()])
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0))


def log_responses(bright: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """(S, H, W) float32 scale-normalised responses ``-σ² ∇²G_σ * image`` (positive on bright blobs)."""
    x = np.asarray(bright, dtype=np.float32)
    from scipy import fft

    h, w = x.shape
    pad = int(min(max(h, w), np.ceil(3 * float(np.max(sigmas)))))
    padded = np.pad(x - x.mean(), pad, mode="symmetric")
    shape = (fft.next_fast_len(padded.shape[0], real=True), fft.next_fast_len(padded.shape[1], real=True))
    spec = fft.rfft2(padded, s=shape)
    fy = (np.fft.fftfreq(shape[0]) * 2 * np.pi).astype(np.float32)[:, None]
    fx = (np.fft.rfftfreq(shape[1]) * 2 * np.pi).astype(np.float32)[None, :]
    w2 = fy**2 + fx**2
    out = np.empty((len(sigmas), h, w), dtype=np.float32)
    for k, s in enumerate(sigmas):
        transfer = np.float32(s**2) * w2 * np.exp(np.float32(-0.5 * s**2) * w2)
        out[k] = fft.irfft2(spec * transfer, s=shape)[pad : pad + h, pad : pad + w]
    return out


def blob_peaks(
    bright: np.ndarray, min_sigma: float = 1.0, max_sigma: float | None = None, steps_per_octave: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blob centres of a bright-objects image: spatial maxima of the best response over scales.

    Parameters
    ----------
    bright
        (H, W) float image whose objects are brighter than their surroundings.
    min_sigma, max_sigma
        Scale range in pixels (default max: a sixth of the shorter side).
    steps_per_octave
        Scales per doubling of σ.

    Returns
    -------
    centres
        (N, 2) int (row, col) of every peak.
    sigmas
        (N,) float64 best scale of every peak.
    strength
        (N,) float64 response of every peak in units of the noise's response at that scale.
    """
    x = np.asarray(bright, dtype=np.float32)
    if max_sigma is None:
        max_sigma = max(min_sigma * 2, min(x.shape) / 6.0)
    n = int(np.floor(np.log2(max_sigma / min_sigma) * steps_per_octave)) + 1
    sigmas = min_sigma * 2.0 ** (np.arange(n) / steps_per_octave)
    noise = max(pixel_noise(x), 1e-6 * max(float(np.ptp(x)), 1e-12))
    resp = log_responses(x, sigmas)
    resp *= (np.sqrt(2 * np.pi) * sigmas / noise).astype(np.float32)[:, None, None]
    best = resp.max(axis=0)
    scale_index = resp.argmax(axis=0)
    peaks = (best == ndi.maximum_filter(best, size=5, mode="nearest")) & (best > 0)
    # a best scale at the end of the range is cut, not a maximum
    peaks &= (scale_index > 0) & (scale_index < n - 1)
    rows, cols = np.nonzero(peaks)
    return np.stack([rows, cols], 1), sigmas[scale_index[rows, cols]], best[rows, cols].astype(np.float64)


def estimate_diameter(
    bright: np.ndarray,
    *,
    min_strength: float = 8.0,
    min_sigma: float = 1.0,
    max_sigma: float | None = None,
    near: float | None = None,
) -> float:
    """Typical object diameter in pixels of an image with bright objects (0.0 when none is found).

    Peaks weaker than ``min_strength`` × the noise's response at their scale are ignored, as are peaks
    weaker than a quarter of the strongest tenth (faint texture beside the objects).

    ``near`` is a rough diameter known beforehand (pixels; e.g. the median of a few example objects):
    only blobs of 2/3 to 3/2 of it count, and ``near`` itself is returned where none does. The estimate
    stays on the blob scale the proposals' rules were made for, which a few objects' mean size is not
    (five nuclei: 23.8 px of equivalent diameter, where the blobs of the image give 20.3).
    """
    # the same scales as without a hint (the estimate is quantised by them), fewer blobs
    window = (near / 3.0, near * 0.75) if near else None
    diameters = strong_blob_diameters(bright, min_strength, min_sigma, max_sigma, window)
    return float(np.median(diameters)) if diameters.size else float(near or 0.0)


def strong_blob_diameters(
    bright: np.ndarray,
    min_strength: float = 8.0,
    min_sigma: float = 1.0,
    max_sigma: float | None = None,
    sigma_window: tuple[float, float] | None = None,
) -> np.ndarray:
    """(N,) float64 diameters 2σ (pixels of ``bright``) of its strong blob peaks: at least
    ``min_strength`` × the noise's response at their scale, with σ within ``sigma_window`` (pixels) when
    given, and at least a quarter of the strongest tenth of those. Empty for a flat or tiny image.
    """
    g, f = reduce_image(bright)
    if min(g.shape) < 8 or float(np.ptp(g)) == 0.0:
        return np.zeros(0)
    _, sig, strength = blob_peaks(g, min_sigma=min_sigma, max_sigma=max_sigma)
    ok = strength >= min_strength
    if sigma_window is not None:
        ok &= (sig >= sigma_window[0] / f) & (sig <= sigma_window[1] / f)
    if not ok.any():
        return np.zeros(0)
    sig, strength = sig[ok], strength[ok]
    return 2.0 * sig[strength >= np.percentile(strength, 90) / 4.0] * f


SMALL_POPULATION = 0.5  # strong blobs this much smaller than the typical one make a population of their own
SMALL_PERCENTILE = 10.0


def small_population_diameter(bright: np.ndarray, typical: float) -> float | None:
    """The diameter of a population of objects much smaller than the typical one, or None.

    The ``SMALL_PERCENTILE``-th percentile of the strong blobs' diameters
    (:func:`strong_blob_diameters`), where it is under ``SMALL_POPULATION`` × ``typical`` (pixels). One
    population of nuclei (the eight 512² variants of :mod:`napari_sam.io.sample_variants`) gives
    0.63–0.8× its median there; 20 ellipses of 14 px among 20 of 44 px, 0.4×.
    """
    diameters = strong_blob_diameters(bright)
    if typical <= 0 or not diameters.size:
        return None
    small = float(np.percentile(diameters, SMALL_PERCENTILE))
    return small if small < SMALL_POPULATION * typical else None


def blob_boxes(
    bright: np.ndarray, diameter: float, *, min_strength: float = 8.0, pad: float = 1.0
) -> np.ndarray:
    """Boxes around the strong scale-space blobs of about the object size.

    A blob's centre and scale come from a matched filter, so they hold where a threshold does not: in
    noise, and between touching objects. A disk of radius r peaks at σ = r, so each box spans σ + ``pad``
    around its centre. Blobs of 0.4–1.6× the typical radius that pass the strength rules of
    :func:`estimate_diameter` count.

    Parameters
    ----------
    bright
        (H, W) float image whose objects are brighter than their surroundings.
    diameter
        Typical object diameter in pixels.

    Returns
    -------
    numpy.ndarray
        (N, 4) float64 boxes (min_row, min_col, max_row, max_col), inside the image.
    """
    g, f = reduce_image(bright)
    radius = diameter / 2.0 / f
    if min(g.shape) < 8 or float(np.ptp(g)) == 0.0 or radius <= 0:
        return np.zeros((0, 4))
    centres, sig, strength = blob_peaks(g, min_sigma=max(0.7, 0.4 * radius), max_sigma=max(1.6 * radius, 1.5))
    ok = strength >= min_strength
    if ok.any():
        ok &= strength >= np.percentile(strength[ok], 90) / 4.0
    c = (centres[ok].astype(np.float64) + 0.5) * f - 0.5
    half = sig[ok] * f + pad
    boxes = np.stack([c[:, 0] - half, c[:, 1] - half, c[:, 0] + half, c[:, 1] + half], axis=1)
    h, w = np.asarray(bright).shape[:2]
    return np.clip(np.round(boxes), 0, [h - 1, w - 1, h - 1, w - 1]).reshape(-1, 4)
