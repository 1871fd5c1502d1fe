"""Augmentations applied to a whole plane before it is embedded: the eight flips/90° rotations and an
intensity change expressed as a different intensity scaling (so the session's own preprocessing makes
the model input).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from napari_sam.image.normalize import IntensityScaling


@dataclass(frozen=True)
class Variant:
    """One augmentation: ``rot90`` quarter turns (0–3), then a left-right ``flip``; the intensity window
    moved by ``shift`` and stretched by ``stretch`` (fractions of its span; 0 and 1 leave it alone).
    """

    rot90: int = 0
    flip: bool = False
    shift: float = 0.0
    stretch: float = 1.0

    @property
    def is_identity(self) -> bool:
        return self.rot90 % 4 == 0 and not self.flip and self.shift == 0.0 and self.stretch == 1.0

    def apply(self, array: np.ndarray) -> np.ndarray:
        """The same geometric transform on an (H, W) or (H, W, C) array (a contiguous copy)."""
        out = np.rot90(array, self.rot90 % 4, axes=(0, 1))
        if self.flip:
            out = out[:, ::-1]
        return np.ascontiguousarray(out)

    def scaling(self, base: IntensityScaling) -> IntensityScaling:
        """``base`` with its [low, high] window shifted and stretched (a brightness/contrast change)."""
        if self.shift == 0.0 and self.stretch == 1.0:
            return base
        low = np.asarray(base.low, dtype=np.float64)
        span = np.asarray(base.high, dtype=np.float64) - low
        new_low = low + self.shift * span
        new_high = new_low + self.stretch * span
        return replace(base, low=tuple(new_low.tolist()), high=tuple(new_high.tolist()))


def random_variants(count: int, rng: np.random.Generator, intensity: float = 0.15) -> list[Variant]:
    """``count`` distinct random non-identity variants (geometry drawn without repetition while possible)."""
    geometries = [(k, f) for k in range(4) for f in (False, True) if (k, f) != (0, False)]
    order = rng.permutation(len(geometries))
    variants = []
    for i in range(count):
        k, f = geometries[order[i % len(geometries)]]
        shift = float(rng.uniform(-intensity, intensity))
        stretch = float(np.exp(rng.uniform(-2 * intensity, 2 * intensity)))
        variants.append(Variant(k, f, shift, stretch))
    return variants
