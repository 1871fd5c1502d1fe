"""The napari-layer adapter: a Points and a Shapes layer → the core's :class:`~napari_sam.prompts.Prompts`.

Points: a ``prompt`` feature, ``"positive"`` or ``"negative"``. Shapes: rectangles are box prompts;
polygons and ellipses are rasterised into a mask prompt (lines and paths are ignored).
All coordinates leaving this module are (row, col) image data pixels of the chosen plane; what is
done with several rectangles or a drawn mask is the core's rule (:meth:`Prompts.decoder_request`).
"""

from __future__ import annotations

import numpy as np

from napari_sam._napari._layers import ImageInfo, to_image_pixels
from napari_sam.prompts import Prompts

POSITIVE = "positive"
NEGATIVE = "negative"
PROMPT_FEATURE = "prompt"


def _on_plane(coords: np.ndarray, plane: tuple[int, ...]) -> np.ndarray:
    """(N,) bool: which rows of (N, D) image-data coordinates lie on ``plane`` (by rounding)."""
    if not plane or len(coords) == 0:
        return np.ones(len(coords), dtype=bool)
    lead = np.round(coords[:, : len(plane)]).astype(int)
    return (lead == np.asarray(plane)[None]).all(axis=1)


def point_prompts(
    points_layer, image_layer, info: ImageInfo, plane: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) (row, col) points of ``points_layer`` on ``plane`` and their (N,) 1/0 labels."""
    if points_layer is None or len(points_layer.data) == 0:
        return np.zeros((0, 2)), np.zeros(0, dtype=np.int64)
    coords = to_image_pixels(points_layer, image_layer, points_layer.data)
    keep = _on_plane(coords, plane) if points_layer.ndim == image_layer.ndim else np.ones(len(coords), bool)
    if PROMPT_FEATURE in points_layer.features:
        kinds = np.asarray(points_layer.features[PROMPT_FEATURE]).astype(str)
    else:
        kinds = np.full(len(coords), POSITIVE)
    labels = (kinds != NEGATIVE).astype(np.int64)
    return coords[keep, -2:], labels[keep]


def shape_prompts(
    shapes_layer, image_layer, info: ImageInfo, plane: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Boxes (K, 4) from rectangles and the (H, W) bool mask of polygons/ellipses on ``plane``."""
    boxes: list[np.ndarray] = []
    mask = None
    if shapes_layer is None or len(shapes_layer.data) == 0:
        return np.zeros((0, 4)), None
    h, w = info.spatial_shape
    same_ndim = shapes_layer.ndim == image_layer.ndim
    for verts, kind in zip(shapes_layer.data, shapes_layer.shape_type):
        if kind not in ("rectangle", "polygon", "ellipse"):
            continue
        coords = to_image_pixels(shapes_layer, image_layer, verts)
        if same_ndim and not _on_plane(coords[:1], plane)[0]:
            continue
        rc = coords[:, -2:]
        if kind == "rectangle":
            r0, c0 = rc.min(axis=0)
            r1, c1 = rc.max(axis=0)
            r0, r1 = np.clip([r0, r1], 0, h - 1)
            c0, c1 = np.clip([c0, c1], 0, w - 1)
            if r1 > r0 and c1 > c0:
                boxes.append(np.array([r0, c0, r1, c1]))
            continue
        outline = ellipse_outline(rc) if kind == "ellipse" else rc
        region = rasterise_polygon(outline, (h, w))
        if region.any():
            mask = region if mask is None else (mask | region)
    return (np.stack(boxes) if boxes else np.zeros((0, 4))), mask


def ellipse_outline(corners: np.ndarray, n: int = 64) -> np.ndarray:
    """(n, 2) outline of the ellipse inscribed in napari's 4 bounding-box corners ((4, 2) row, col)."""
    corners = np.asarray(corners, dtype=float)
    centre = corners.mean(axis=0)
    u = (corners[1] - corners[0]) / 2.0
    v = (corners[3] - corners[0]) / 2.0
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return centre + np.cos(t)[:, None] * u + np.sin(t)[:, None] * v


def rasterise_polygon(outline_rc: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool mask of the pixels whose centres lie inside the polygon ``outline_rc`` ((N, 2))."""
    from skimage.draw import polygon

    rr, cc = polygon(outline_rc[:, 0], outline_rc[:, 1], shape=shape)
    out = np.zeros(shape, dtype=bool)
    out[rr, cc] = True
    return out


def collect_prompts(
    points_layer, shapes_layer, image_layer, info: ImageInfo, plane: tuple[int, ...]
) -> Prompts:
    """All prompts of the two layers on ``plane`` of ``image_layer``, in its pixels, checked by
    :meth:`Prompts.build` (a point off the image is a ``ValueError``).
    """
    pts, labels = point_prompts(points_layer, image_layer, info, plane)
    boxes, mask = shape_prompts(shapes_layer, image_layer, info, plane)
    return Prompts.build(pts, labels, boxes, mask, tuple(plane), image_shape=info.spatial_shape)
