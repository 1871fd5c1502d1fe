"""The checks of one object's prompts (the one validation path of :class:`~napari_sam.prompts.Prompts`):
each turns what a user or a front end gave into the stored form, or raises ``ValueError`` naming the
problem and the fix.

Coordinates are napari's, in image pixels: points (row, col), boxes (min_row, min_col, max_row, max_col).
"""

from __future__ import annotations

import numpy as np

from napari_sam.geometry.coords import as_boxes_rc, as_points_rc

POSITIVE, NEGATIVE = 1, 0  # point labels


def check_points(points) -> np.ndarray:
    if points is None or np.size(points) == 0:
        arr = np.asarray(points if points is not None else [], dtype=object)
        if arr.ndim == 2 and arr.shape[1] not in (0, 2):
            raise ValueError(f"points must be (row, col) pairs, shape (N, 2); got shape {arr.shape}")
        return np.zeros((0, 2))
    return as_points_rc(check_numbers(points, "points"))


def check_boxes(boxes) -> np.ndarray:
    if boxes is None or np.size(boxes) == 0:
        return np.zeros((0, 4))
    return as_boxes_rc(check_numbers(boxes, "boxes"))


def check_numbers(values, what: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be numbers; got {values!r}") from None


def check_labels(labels, n: int) -> np.ndarray:
    if labels is None:
        return np.ones(n, dtype=np.int8)
    arr = np.asarray(labels)
    if arr.dtype == bool:
        arr = arr.astype(np.int8)
    arr = arr.ravel() if arr.ndim > 1 and arr.size == n else arr
    if arr.shape != (n,):
        raise ValueError(f"labels must give one 1/0 per point: {n} points, {arr.size} labels")
    try:
        valid = np.isin(arr.astype(np.float64), (0, 1)).all()
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(
            f"labels must be 1 (positive) or 0 (negative); got {sorted(set(arr.tolist()), key=str)}"
        )
    return arr.astype(np.int8)


def check_mask(mask) -> np.ndarray | None:
    if mask is None:
        return None
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"a mask prompt is an (H, W) bool image; got shape {arr.shape}")
    if arr.dtype != bool:
        if not np.isin(arr, (0, 1)).all():
            raise ValueError("a mask prompt holds True/False (or 1/0) only")
        arr = arr.astype(bool)
    if not arr.any():
        raise ValueError("the mask prompt is empty: draw a polygon or ellipse over the object")
    return arr.copy()


def check_refines(refines, mask) -> int | None:
    if refines is None:
        return None
    if isinstance(refines, bool) or not isinstance(refines, int | np.integer) or refines < 1:
        raise ValueError(f"refines is the id (an integer >= 1) of the object being refined; got {refines!r}")
    if mask is None:
        raise ValueError(f"refining object {refines} needs its mask (the mask prompt)")
    return int(refines)


def check_plane(plane) -> tuple[int, ...]:
    if plane is None:
        return ()
    if isinstance(plane, int | np.integer):
        plane = (plane,)
    try:
        out = tuple(int(v) for v in plane)
    except (TypeError, ValueError):
        raise ValueError(f"plane must be a tuple of indices of the leading axes; got {plane!r}") from None
    if any(v < 0 for v in out) or any(float(a) != b for a, b in zip(plane, out)):
        raise ValueError(f"plane indices are integers >= 0; got {plane!r}")
    return out
