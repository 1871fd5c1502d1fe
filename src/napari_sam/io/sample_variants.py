"""Variants of the stardist nuclei image with exactly known ground truth, for automatic segmentation.

Each variant is built from the real 512×512 fluorescence image (:func:`~napari_sam.io.samples.nuclei`)
by a documented, seeded transformation whose effect on the ground truth is known exactly, so the same
scores (F1 at IoU 0.5) can be compared across imaging conditions:

``original``
    The image as it is (bright nuclei on a dark background), its own labels.
``inverted``
    ``max + min - image``: dark nuclei on a bright background (brightfield-like); same labels.
``he``
    An H&E-like RGB rendering with the Beer–Lambert stain model: haematoxylin concentration follows the
    nuclei's fluorescence (with a coarse chromatin texture), eosin fills the background and is denser in
    a cytoplasm ring around every nucleus, with a smooth texture; transmitted light
    ``255 · exp(-(c_H · OD_H + c_E · OD_E))`` with Ruifrok & Johnston's optical densities, plus
    Gaussian camera noise; uint8 (H, W, 3); same labels.
``down2``, ``down4``
    Block means over 2×2 / 4×4 pixels; each block's label is the one covering most of it, an object
    winning a tie with the background (:func:`block_majority`; objects that vanish are gone from the
    truth too, the rest are relabelled consecutively).
``lowsnr``
    Photon counts: background 10 photons per pixel, the nuclei's mean excess 3 × √10 (object SNR 3:
    mean object excess over the background's noise), Poisson noise; uint16; same labels.
``uneven``
    Uneven illumination: the image times a smooth field from ×0.3 (one corner) to ×1 (the opposite),
    plus a smooth additive offset of up to half the nuclei's mean excess; uint16; same labels.
``mixed``
    Small and large nuclei side by side: the right 192 columns replaced by a crop of the image up-scaled
    3× (:func:`mixed_sizes`), about 75 small nuclei beside 13 large ones; the up-scaled nuclei get their
    own labels.

:func:`anisotropic_stack` builds a synthetic 3D stack with known 3D labels (ellipsoidal nuclei, z step
3× the xy pixel, blur, dim signal, Poisson and read noise).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import relabel_sequential

VARIANTS_2D = ("original", "inverted", "he", "down2", "down4", "lowsnr", "uneven", "mixed")

# Ruifrok & Johnston optical densities (R, G, B) per unit stain, normalised
_OD_H = np.array([0.650, 0.704, 0.286])
_OD_E = np.array([0.072, 0.990, 0.105])


def _signal(img: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The image as float, the background's median and the nuclei's mean excess over it."""
    x = img.astype(np.float64)
    bg = float(np.median(x[truth == 0]))
    excess = float(x[truth > 0].mean() - bg)
    return x, bg, excess


def smooth_texture(shape: tuple[int, int], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth random texture in [0, 1] (Gaussian-filtered white noise, rescaled)."""
    t = ndi.gaussian_filter(rng.standard_normal(shape), sigma)
    return (t - t.min()) / max(float(np.ptp(t)), 1e-9)


def inverted(img: np.ndarray) -> np.ndarray:
    """Dark objects on a bright background, same dtype."""
    x = img.astype(np.int64)
    return (x.max() + x.min() - x).astype(img.dtype)


def he_rendering(img: np.ndarray, truth: np.ndarray, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 H&E-like brightfield rendering (see the module's description)."""
    rng = np.random.default_rng(seed)
    x, bg, excess = _signal(img, truth)
    nuc = np.clip((x - bg) / (2.0 * excess), 0.0, 1.0)
    chromatin = 0.75 + 0.5 * smooth_texture(x.shape, 1.5, rng)
    c_h = 0.05 + 1.3 * nuc * chromatin
    ring = ndi.binary_dilation(truth > 0, iterations=6) & (truth == 0)
    cyto = ndi.gaussian_filter(ring.astype(np.float64), 2.0)
    c_e = 0.25 + 0.35 * smooth_texture(x.shape, 6.0, rng) + 0.45 * cyto
    od = c_h[..., None] * _OD_H + c_e[..., None] * _OD_E
    rgb = 255.0 * np.exp(-od) + rng.normal(0.0, 4.0, od.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def block_majority(labels: np.ndarray, factor: int) -> np.ndarray:
    """(H // factor, W // factor) labels: per ``factor`` × ``factor`` block of an (H, W) label image, the
    label covering most of it; an object wins a tie with the background, and of tied objects the first
    in raster order. The truth of a block-mean image: each pixel of it is what covers most of its block
    (a sample of one pixel per block is off the block's centre by half a pixel for even factors).
    """
    h, w = (labels.shape[0] // factor) * factor, (labels.shape[1] // factor) * factor
    blocks = labels[:h, :w].reshape(h // factor, factor, w // factor, factor).transpose(0, 2, 1, 3)
    blocks = blocks.reshape(h // factor, w // factor, factor * factor)
    counts = (blocks[..., :, None] == blocks[..., None, :]).sum(axis=-1).astype(np.float64)
    counts += 0.5 * (blocks > 0)  # a tie with the background goes to the object
    return np.take_along_axis(blocks, counts.argmax(axis=-1)[..., None], axis=-1)[..., 0]


def downscaled(img: np.ndarray, truth: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Block-mean image and block-majority labels (:func:`block_majority`), down by an integer
    ``factor``.
    """
    h, w = (img.shape[0] // factor) * factor, (img.shape[1] // factor) * factor
    x = img[:h, :w].astype(np.float64).reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
    lab = block_majority(truth, factor)
    return np.round(x).astype(img.dtype), relabel_sequential(lab)[0].astype(np.int32)


def low_snr(img: np.ndarray, truth: np.ndarray, snr: float = 3.0, background: float = 10.0, seed: int = 0):
    """Poisson photon counts with the nuclei's mean excess ``snr`` × √``background``; uint16."""
    rng = np.random.default_rng(seed)
    x, bg, excess = _signal(img, truth)
    rate = background + np.clip(x - bg, 0.0, None) * (snr * np.sqrt(background) / excess)
    return rng.poisson(rate).astype(np.uint16)


def uneven_illumination(img: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The image × a smooth ×0.3–×1 field plus a smooth offset (up to half the nuclei's excess)."""
    x, bg, excess = _signal(img, truth)
    h, w = x.shape
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h - 1, w - 1])[:, None, None]
    ramp = (yy + xx) / 2.0  # 0 at the top-left corner, 1 at the bottom-right
    gain = 0.3 + 0.7 * (0.5 - 0.5 * np.cos(np.pi * ramp))
    offset = 0.5 * excess * (0.5 + 0.5 * np.sin(2 * np.pi * xx) * np.cos(np.pi * yy))
    return np.clip(np.round(x * gain + offset), 0, 65535).astype(np.uint16)


def mixed_sizes(
    img: np.ndarray,
    truth: np.ndarray,
    factor: int = 3,
    width: int = 192,
    source: tuple[int, int] = (96, 40),
) -> tuple[np.ndarray, np.ndarray]:
    """Small and large nuclei in one image: the right ``width`` columns replaced by the crop of the image
    at ``source`` (row, col of its top-left pixel) up-scaled ``factor``× (image bilinear, labels nearest).

    The left part and its labels are the original's (nuclei cut by the seam keep the part still shown);
    the up-scaled nuclei are new objects with their own labels, so the truth stays exact. The default
    crop (171 × 64 pixels of the stardist image) holds the most whole nuclei of any such crop, 9 (and 4
    cut by its edges).
    """
    img = np.asarray(img)
    h, w = img.shape[:2]
    c0 = w - width
    r, c = source
    src = (slice(r, r + -(-h // factor)), slice(c, c + -(-width // factor)))
    big = ndi.zoom(img[src].astype(np.float64), factor, order=1)[:h, :width]
    big_labels = ndi.zoom(np.asarray(truth)[src], factor, order=0)[:h, :width]
    if big.shape != (h, width):
        raise ValueError(f"the crop at {source} is too close to the image's edge for {factor}× up-scaling")
    out = img.astype(np.float64).copy()
    out[:, c0:] = big
    labels = np.asarray(truth).astype(np.int32).copy()
    labels[:, c0:] = np.where(big_labels > 0, big_labels + labels.max(), 0)
    return np.round(out).astype(img.dtype), relabel_sequential(labels)[0].astype(np.int32)


def variant(name: str, img: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(image, labels) of one named 2D variant of ``img`` with ground truth ``truth``."""
    truth = np.asarray(truth).astype(np.int32)
    if name == "original":
        return img, truth
    if name == "inverted":
        return inverted(img), truth
    if name == "he":
        return he_rendering(img, truth), truth
    if name == "down2":
        return downscaled(img, truth, 2)
    if name == "down4":
        return downscaled(img, truth, 4)
    if name == "lowsnr":
        return low_snr(img, truth), truth
    if name == "uneven":
        return uneven_illumination(img, truth), truth
    if name == "mixed":
        return mixed_sizes(img, truth)
    raise ValueError(f"unknown variant {name!r}; choose from {VARIANTS_2D}")


def anisotropic_stack(
    shape: tuple[int, int, int] = (16, 128, 128),
    count: int = 24,
    *,
    z_step: float = 3.0,
    radius_range: tuple[float, float] = (5.0, 9.0),
    background: float = 20.0,
    peak: float = 25.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A small, dim, anisotropic (Z, Y, X) fluorescence stack of ellipsoidal nuclei with known 3D labels.

    Nuclei are ellipsoids with xy radii in ``radius_range`` pixels (two axes, random orientation in xy)
    and a physical z radius like their xy radius, i.e. ``r / z_step`` planes; centres are drawn so that
    objects do not overlap (they may touch). The intensity (``peak`` photons at the centre over
    ``background``, falling to 60 % at the rim, per-object brightness ×0.6–×1.2) is blurred with σ = 1
    pixel in xy and 1 / ``z_step`` planes in z, then Poisson and Gaussian read noise (σ = 2) are added.

    Returns
    -------
    stack
        (Z, Y, X) uint16.
    labels
        (Z, Y, X) int32, object i has label i + 1.
    """
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    zz, yy, xx = np.mgrid[0:nz, 0:ny, 0:nx].astype(np.float64)
    labels = np.zeros(shape, dtype=np.int32)
    signal = np.zeros(shape, dtype=np.float64)
    placed: list[tuple[np.ndarray, float]] = []
    tries = 0
    while len(placed) < count and tries < 5000:
        tries += 1
        r_a, r_b = rng.uniform(*radius_range, size=2)
        r_z = rng.uniform(*radius_range)
        c = np.array(
            [rng.uniform(r_z / z_step, nz - 1 - r_z / z_step), rng.uniform(4, ny - 5), rng.uniform(4, nx - 5)]
        )
        phys = c * np.array([z_step, 1.0, 1.0])
        rmax = max(r_a, r_b, r_z)
        if any(np.linalg.norm(phys - p) < rmax + r + 1.0 for p, r in placed):
            continue
        theta = rng.uniform(0, np.pi)
        dy, dx, dz = yy - c[1], xx - c[2], (zz - c[0]) * z_step
        u = dy * np.cos(theta) + dx * np.sin(theta)
        v = -dy * np.sin(theta) + dx * np.cos(theta)
        d = (u / r_a) ** 2 + (v / r_b) ** 2 + (dz / r_z) ** 2
        inside = (d <= 1.0) & (labels == 0)
        if inside.sum() < 20:
            continue
        placed.append((phys, rmax))
        labels[inside] = len(placed)
        signal[inside] = rng.uniform(0.6, 1.2) * (1.0 - 0.4 * d[inside])
    blurred = ndi.gaussian_filter(signal, (1.0 / z_step, 1.0, 1.0))
    counts = rng.poisson(background + peak * blurred).astype(np.float64) + rng.normal(0, 2.0, shape)
    return np.clip(np.round(counts), 0, 65535).astype(np.uint16), labels
