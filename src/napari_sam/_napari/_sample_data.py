"""Sample data for napari's File ▸ Open Sample menu (as layer-data tuples)."""

from __future__ import annotations

import numpy as np


def nuclei_sample() -> list[tuple]:
    """The 512×512 fluorescence nuclei image (stardist's Data Science Bowl sample) and, hidden, its
    ground-truth instance labels.
    """
    from napari_sam.io.samples import nuclei

    image, truth = nuclei()
    return [
        (image, {"name": "nuclei"}, "image"),
        (truth.astype(np.int32), {"name": "nuclei ground truth", "visible": False, "opacity": 0.4}, "labels"),
    ]


def large_blobs_sample(side: int = 4096, spacing: int = 64, seed: int = 1) -> list[tuple]:
    """A generated ``side``×``side`` uint16 image of nuclei-like blobs on a jittered grid (one about
    every ``spacing`` pixels) with its ground-truth labels: a large image with known objects.
    """
    from napari_sam.io.samples import blobs

    rng = np.random.default_rng(seed)
    grid = np.arange(spacing // 2, side - spacing // 2, spacing, dtype=float)
    rows, cols = np.meshgrid(grid, grid, indexing="ij")
    centres = np.stack([rows.ravel(), cols.ravel()], axis=1) + rng.uniform(
        -spacing / 6, spacing / 6, (rows.size, 2)
    )
    radii = rng.uniform(spacing / 8, spacing / 3.5, (len(centres), 2))
    image, truth = blobs((side, side), centres, radii, seed=seed)
    return [
        (image, {"name": f"blobs {side}²"}, "image"),
        (truth, {"name": f"blobs {side}² ground truth", "visible": False, "opacity": 0.4}, "labels"),
    ]
