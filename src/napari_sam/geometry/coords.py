"""The one place where napari's (row, col) becomes SAM's (x, y), and image pixels become window pixels.

Conventions
-----------
* Public API: points are (row, col); boxes are (min_row, min_col, max_row, max_col), max inclusive,
  in image pixels (pixel centres at integer coordinates, as napari draws them).
* Model frame: SAM's (x, y) in pixels of the S×S model input of one
  :class:`~napari_sam.geometry.windows.Window`.
"""

from __future__ import annotations

import numpy as np


def as_points_rc(points) -> np.ndarray:
    """(N, 2) float64 (row, col) from any sequence of pairs; ``ValueError`` if not that shape."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 1 and arr.size == 2:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"points must be (row, col) pairs, shape (N, 2); got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("points contain NaN or inf")
    return arr


def as_boxes_rc(boxes) -> np.ndarray:
    """(N, 4) float64 boxes (min_row, min_col, max_row, max_col); a single box may be given flat."""
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim == 1 and arr.size == 4:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(
            f"boxes must be (min_row, min_col, max_row, max_col), shape (N, 4); got shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ValueError("boxes contain NaN or inf")
    flipped = (arr[:, 2] < arr[:, 0]) | (arr[:, 3] < arr[:, 1])
    if flipped.any():
        raise ValueError(
            f"box {arr[flipped][0].tolist()} has max < min; boxes are (min_row, min_col, max_row, max_col)"
        )
    return arr


def image_to_model_xy(points_rc: np.ndarray, origin_rc: tuple[int, int], scale: float) -> np.ndarray:
    """Image (row, col) → model-frame (x, y) of a window whose top-left pixel is ``origin_rc`` and
    which is resized by ``scale`` (model pixels per image pixel). Pixel centres map to pixel centres.
    """
    rc = (
        np.asarray(points_rc, dtype=np.float64) - np.asarray(origin_rc, dtype=np.float64) + 0.5
    ) * scale - 0.5
    return rc[..., ::-1].copy()


def boxes_to_model_xyxy(boxes_rc: np.ndarray, origin_rc: tuple[int, int], scale: float) -> np.ndarray:
    """(N, 4) image boxes (min_row, min_col, max_row, max_col) → (N, 4) model-frame (x0, y0, x1, y1)."""
    boxes_rc = np.asarray(boxes_rc, dtype=np.float64)
    top_left = image_to_model_xy(boxes_rc[:, :2], origin_rc, scale)
    bottom_right = image_to_model_xy(boxes_rc[:, 2:], origin_rc, scale)
    return np.concatenate([top_left, bottom_right], axis=1)


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(min_row, min_col, max_row, max_col) of a 2D bool mask, max inclusive; None if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]), int(cols[-1])


def median_extent(boxes_rc) -> float:
    """The median extent (longest side, pixels) of (N, 4) boxes (min_row, min_col, max_row, max_col), max
    inclusive; 0.0 for none.
    """
    b = np.asarray(boxes_rc, dtype=np.float64).reshape(-1, 4)
    if len(b) == 0:
        return 0.0
    return float(np.median(np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) + 1))


def innermost_pixel(mask: np.ndarray) -> tuple[int, int]:
    """(row, col) of the pixel of a non-empty (H, W) bool ``mask`` farthest from its edge (the image's
    border counts as edge): where a user clicks an object.
    """
    from scipy.ndimage import distance_transform_edt

    depth = distance_transform_edt(np.pad(np.asarray(mask, dtype=bool), 1))[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(row), int(col)
