"""The two regular steps of window geometry: √2 size classes and evenly spread window origins.

Every window side the package chooses (zoom windows, the automatic mode's size classes, windows
centred on an object that crosses a tile seam) comes from :func:`sqrt2_side`, so two callers that
want a similar size get the same side and share one cached embedding. Every row of overlapping
windows (the tile grid of a large image, the automatic mode's grids and crops, the tiles of a very
large image in ``segment_everything``) takes its origins from :func:`spread_starts`.

Lengths and sides are in image pixels.
"""

from __future__ import annotations

import math

import numpy as np

SQRT2 = 2**0.5  # the ratio of successive size classes


def sqrt2_side(base: float, step: int) -> int:
    """The side ``step`` √2 steps above ``base``: round(base · 2^(step/2))."""
    return int(round(base * 2 ** (step / 2)))


def stepped_side(wanted: float, base: float) -> int:
    """The smallest √2-step side from ``base`` (``base`` itself included) that is at least ``wanted``."""
    steps = max(0, math.ceil(2 * math.log2(max(wanted, 1.0) / base) - 1e-9))
    return sqrt2_side(base, steps)


def sqrt2_sides(base: float, below: float) -> list[int]:
    """All √2-step sides from ``base`` up that are smaller than ``below``, ascending."""
    sides, step = [], 0
    while (side := sqrt2_side(base, step)) < below:
        sides.append(side)
        step += 1
    return sides


def spread_starts(length: int, side: int, count: int) -> list[int]:
    """Origins of ``count`` windows of ``side`` spread evenly over [0, length): the first at 0, the last
    ending at ``length``, rounded to whole pixels (duplicates merged); ``[0]`` when one window covers it.
    """
    if side >= length or count <= 1:
        return [0]
    return sorted(set(np.linspace(0, length - side, count).round().astype(int).tolist()))


def grid_starts(length: int, side: int, overlap: int) -> list[int]:
    """Origins of the fewest windows of ``side`` that cover [0, length) with neighbours overlapping by at
    least ``overlap`` pixels, spread evenly (see :func:`spread_starts`).
    """
    if side >= length:
        return [0]
    stride = max(1, side - overlap)
    return spread_starts(length, side, math.ceil((length - side) / stride) + 1)
