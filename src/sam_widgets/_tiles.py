"""Pyramid tiles of an image and of its labels, cut on request so the browser only gets what it shows.

A tile ``(level, i, j)`` covers image rows ``[i * T * 2**level, (i + 1) * T * 2**level)`` and columns
``[j * T * 2**level, (j + 1) * T * 2**level)`` (``T`` = :data:`TILE`), sampled every ``2**level``
pixels, so every tile is at most ``T × T`` whatever the zoom. Level 0 is full resolution. Tiles at
the image's bottom/right edge are smaller. Only the requested rows and columns of a lazy (dask/zarr)
image are read.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from napari_sam.image.normalize import IntensityScaling, PreparedImage

TILE = 256  #: tile side in tile pixels


def max_level(shape: tuple[int, int], tile: int = TILE) -> int:
    """The coarsest level: the one at which the whole (H, W) image fits in one tile."""
    longest = max(int(shape[0]), int(shape[1]), 1)
    return max(0, math.ceil(math.log2(longest / tile))) if longest > tile else 0


def tile_bounds(
    shape: tuple[int, int], level: int, i: int, j: int, tile: int = TILE
) -> tuple[int, int, int, int]:
    """Image rows/cols ``(r0, r1, c0, c1)`` covered by tile ``(level, i, j)``.

    Half-open, clipped to the image.

    Raises ``ValueError`` for a tile outside the image or a level outside ``[0, max_level]``.
    """
    h, w = int(shape[0]), int(shape[1])
    top = max_level(shape, tile)
    if not 0 <= level <= top:
        raise ValueError(f"tile level must be in [0, {top}] for an image of shape {(h, w)}; got {level}")
    span = tile << level
    r0, c0 = i * span, j * span
    if i < 0 or j < 0 or r0 >= h or c0 >= w:
        raise ValueError(f"tile ({level}, {i}, {j}) lies outside the image of shape {(h, w)}")
    return r0, min(r0 + span, h), c0, min(c0 + span, w)


def _read(data, r0: int, r1: int, c0: int, c1: int, step: int) -> np.ndarray:
    block = data[r0:r1:step, c0:c1:step]
    if hasattr(block, "compute"):
        block = block.compute()
    return np.asarray(block)


def render(
    image: PreparedImage,
    r0: int,
    r1: int,
    c0: int,
    c1: int,
    step: int = 1,
    contrast_limits: tuple[float, float] | None = None,
) -> np.ndarray:
    """Display pixels of rows [r0, r1) and columns [c0, c1) of ``image``, every ``step``-th pixel.

    Returns (h, w) uint8 for gray images, (h, w, 3) uint8 otherwise. ``contrast_limits`` (low, high) in
    raw intensity units maps every channel alike; None uses the image's own global scaling (the one the
    model sees).
    """
    raw = _read(image.data, r0, r1, c0, c1, step)
    scaling = image.scaling
    if contrast_limits is not None:
        low, high = (float(v) for v in contrast_limits)
        if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
            raise ValueError(
                f"contrast_limits must be finite (low, high) with high > low; got {contrast_limits}"
            )
        n = raw.shape[-1]
        scaling = IntensityScaling((low,) * n, (high,) * n, "manual")
    scaled = scaling.apply(raw)
    if scaled.shape[-1] == 1:
        scaled = scaled[..., 0]
    elif scaled.shape[-1] == 2:
        scaled = np.concatenate([scaled, np.zeros_like(scaled[..., :1])], axis=-1)
    return np.rint(scaled).astype(np.uint8)


class TileSource:
    """Cuts display tiles of one :class:`~napari_sam.image.normalize.PreparedImage`.

    Parameters
    ----------
    image
        The prepared image the session segments (its global scaling gives the default contrast).
    tile
        Tile side in tile pixels.
    cache_tiles
        Image tiles kept (least recently used dropped first), so panning back and changing zoom do not
        read a lazy image again; coarse tiles of a large image without a pyramid read many chunks.
    """

    def __init__(self, image: PreparedImage, tile: int = TILE, cache_tiles: int = 256) -> None:
        self.image = image
        self.tile = tile
        self.cache_tiles = cache_tiles
        self._cache: OrderedDict[tuple, np.ndarray] = OrderedDict()

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape

    @property
    def channels(self) -> int:
        """Channels sent per tile pixel: 1 (gray) or 3 (RGB)."""
        return 1 if self.image.data.shape[-1] == 1 else 3

    @property
    def max_level(self) -> int:
        return max_level(self.shape, self.tile)

    def image_tile(
        self, level: int, i: int, j: int, contrast_limits: tuple[float, float] | None = None
    ) -> np.ndarray:
        """Display pixels of tile ``(level, i, j)``: (h, w) uint8 for gray images, (h, w, 3) uint8 otherwise.

        ``contrast_limits`` (low, high) in raw intensity units maps every channel alike; None uses the
        image's own global scaling (the one the model sees).
        """
        key = (level, i, j, None if contrast_limits is None else tuple(float(v) for v in contrast_limits))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        r0, r1, c0, c1 = tile_bounds(self.shape, level, i, j, self.tile)
        out = render(self.image, r0, r1, c0, c1, 1 << level, contrast_limits)
        self._cache[key] = out
        while len(self._cache) > self.cache_tiles:
            self._cache.popitem(last=False)
        return out

    def labels_tile(self, labels: np.ndarray, level: int, i: int, j: int) -> np.ndarray:
        """(h, w) int32 label ids of tile ``(level, i, j)`` (nearest sample), from (H, W) ``labels``."""
        if tuple(labels.shape) != tuple(self.shape):
            raise ValueError(f"labels of shape {labels.shape} do not match the image's {self.shape}")
        r0, r1, c0, c1 = tile_bounds(self.shape, level, i, j, self.tile)
        return np.ascontiguousarray(_read(labels, r0, r1, c0, c1, 1 << level), dtype=np.int32)


def intensity_range(image: PreparedImage) -> tuple[float, float]:
    """(min, max) of the finite raw values over a strided sample, for the contrast slider's bounds."""
    from napari_sam.image.normalize import compute_scaling

    try:
        full = compute_scaling(image.data, percentiles=(0.0, 100.0), rgb_uint8_identity=False)
    except ValueError:  # constant image: any range that contains the value
        low = float(image.scaling.low[0])
        return low, low + 1.0
    return float(min(full.low)), float(max(full.high))


def default_limits(image: PreparedImage) -> tuple[float, float]:
    """The (low, high) of the image's global scaling, in raw units (the widest over channels)."""
    return float(min(image.scaling.low)), float(max(image.scaling.high))
