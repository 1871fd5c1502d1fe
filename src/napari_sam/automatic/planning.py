"""Which windows to encode for many box prompts, so the encoder runs a bounded number of times.

Every box wants a window of side about ``factor`` × its extent (the zoom rule: small objects are
answered from an enlarged view). Window sides come in √2 steps; each size class lays one regular grid
of overlapping windows over the image, and each box is answered from the window of its class where it
sits most centrally. Many boxes share a window, and the encoder runs at most once per grid window.

Boxes are (min_row, min_col, max_row, max_col) in image pixels, max inclusive.
"""

from __future__ import annotations

import math

import numpy as np

from napari_sam.geometry.steps import SQRT2, grid_starts, sqrt2_sides
from napari_sam.geometry.windows import Window, whole_image_window


def side_classes(image_shape: tuple[int, int], input_size: int, min_fraction: float = 0.25) -> list[int]:
    """Window sides in √2 steps from ``min_fraction`` × S up to the image's longest side."""
    return sqrt2_sides(max(8.0, min_fraction * input_size), max(image_shape))


def plan_windows(
    boxes_rc: np.ndarray,
    image_shape: tuple[int, int],
    input_size: int,
    *,
    factor: float = 7.0,
    min_fraction: float = 0.25,
    margin: int = 8,
    max_fraction: float = 0.75,
) -> tuple[list[Window], np.ndarray]:
    """Windows to encode and the window of each box.

    Each box gets a size class: the smallest side of :func:`side_classes` at least ``factor`` × its
    extent divided by √2 (so the object spans 1/factor to √2/factor of the window), and boxes smaller
    than the median box take the median's class (small objects are seen less enlarged, but one grid
    of windows serves most boxes). Every class lays a
    regular grid of windows over the image whose neighbours overlap by the class's largest box plus
    twice ``margin`` (at most half a window), so boxes lie inside one of them with up to ``margin``
    pixels to spare. Within a class, a greedy set cover picks the grid windows that serve the most
    boxes, and each box is answered from the chosen window where it sits most centrally; only chosen
    windows are encoded. The number of encoder runs is therefore bounded by the grid sizes, whatever
    the number of boxes.

    Parameters
    ----------
    boxes_rc
        (N, 4) float boxes (min_row, min_col, max_row, max_col).
    image_shape
        (H, W).
    input_size
        The model's input side S.
    factor
        Wanted window side = ``factor`` × the box's longest extent (at least ``min_fraction`` × S).
    margin
        Pixels between a box and its window's inner edges.
    max_fraction
        Boxes wanting windows of at least this fraction of the image's longest side use the whole image.

    Returns
    -------
    windows
        The distinct windows to encode.
    assignment
        (N,) int index into ``windows`` for every box.
    """
    boxes = np.asarray(boxes_rc, dtype=np.float64).reshape(-1, 4)
    h, w = image_shape
    n = len(boxes)
    if n == 0:
        return [], np.zeros(0, dtype=np.int64)
    extent = np.maximum(boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1)
    sides = np.array(
        [
            s
            for s in side_classes(image_shape, input_size, min_fraction)
            if s < max_fraction * max(image_shape)
        ],
        dtype=np.int64,
    )
    wanted = factor * extent / SQRT2
    cls = np.searchsorted(sides, wanted) if sides.size else np.zeros(n, dtype=np.int64)
    # smaller boxes than the typical one share the typical class: one grid serves most boxes
    main = int(np.median(cls))
    cls = np.maximum(cls, main)
    # much larger boxes (clusters, background blotches) are answered from the whole image
    cls[cls > main + 1] = sides.size
    too_big = (cls >= sides.size) | (
        extent + 2 * margin > (sides[np.minimum(cls, max(sides.size - 1, 0))] if sides.size else 0)
    )
    windows: list[Window] = []
    index: dict[Window, int] = {}
    assignment = np.full(n, -1, dtype=np.int64)
    for k in np.unique(cls[~too_big]):
        side = int(sides[k])
        members = np.flatnonzero((cls == k) & ~too_big)
        # overlap: the class's largest box plus margins, but never more than half a window
        overlap = min(int(np.ceil(extent[members].max())) + 2 * margin, side // 2)
        rows, cols = grid_starts(h, side, overlap), grid_starts(w, side, overlap)
        grid = [Window(r0, c0, side) for r0 in rows for c0 in cols]
        b = boxes[members]
        # centrality[g, i]: distance (pixels) from box i to the nearest inner edge of grid window g
        r0 = np.array([g.row0 for g in grid], dtype=np.float64)[:, None]
        c0 = np.array([g.col0 for g in grid], dtype=np.float64)[:, None]
        cen = np.minimum.reduce(
            [
                np.where(r0 == 0, side, b[None, :, 0] - r0),
                np.where(c0 == 0, side, b[None, :, 1] - c0),
                np.where(r0 + side >= h, side, r0 + side - 1 - b[None, :, 2]),
                np.where(c0 + side >= w, side, c0 + side - 1 - b[None, :, 3]),
            ]
        )
        inside = (
            (b[None, :, 0] >= r0)
            & (b[None, :, 1] >= c0)
            & (b[None, :, 2] < r0 + side)
            & (b[None, :, 3] < c0 + side)
        )
        best_cen = np.where(inside, cen, -np.inf).max(axis=0)
        # a window serves a box when the box is as central there as the grid allows (up to margin)
        serves = inside & (cen >= np.minimum(best_cen, margin)[None, :])
        covered = np.zeros(len(members), dtype=bool)
        chosen: list[int] = []
        while not covered.all():
            gains = (serves & ~covered[None, :]).sum(axis=1)
            g = int(np.argmax(gains))
            if gains[g] == 0:
                break
            chosen.append(g)
            covered |= serves[g]
        if not chosen:
            continue
        pick = np.array(chosen)[np.argmax(np.where(serves[chosen], cen[chosen], -np.inf), axis=0)]
        for i, g in zip(members, pick):
            if not serves[g, members.tolist().index(i)]:
                continue
            if grid[g] not in index:
                index[grid[g]] = len(windows)
                windows.append(grid[g])
            assignment[i] = index[grid[g]]
    if (assignment < 0).any():
        whole = whole_image_window(image_shape)
        if whole not in index:
            index[whole] = len(windows)
            windows.append(whole)
        assignment[assignment < 0] = index[whole]
    return windows, assignment


def count_bound(image_shape: tuple[int, int], side: int) -> int:
    """How many windows of ``side`` tile an image without overlap: a lower bound for dense images."""
    return math.ceil(image_shape[0] / side) * math.ceil(image_shape[1] / side)
