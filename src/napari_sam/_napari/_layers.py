"""napari layers ↔ image pixels: which layers can be segmented, which plane is shown, and where a
point of another layer falls in the image layer's data pixels.

Coordinates here are napari's: data coordinates of the *image layer* in (…, row, col) order. The
world → data mapping (scale, translate, rotate, shear, affine) is napari's own transform
(``Layer.data_to_world`` / ``Layer.world_to_data``); SAM's (x, y) frame never appears here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ImageInfo:
    """How an image layer is read for segmentation.

    Attributes
    ----------
    ndim
        Number of non-channel axes of the layer (napari's ``layer.ndim``: RGB(A) axis excluded).
    spatial_shape
        (H, W): the last two of those axes.
    lead_shape
        Shape of the leading (plane) axes, ``()`` for a 2D image.
    rgb
        Whether the layer's last axis holds RGB(A) channels.
    """

    ndim: int
    spatial_shape: tuple[int, int]
    lead_shape: tuple[int, ...]
    rgb: bool

    @property
    def num_planes(self) -> int:
        return int(np.prod(self.lead_shape)) if self.lead_shape else 1


def check_image_layer(layer) -> ImageInfo:
    """Validate that ``layer`` is an image napari-sam can segment; ``ValueError`` saying why not.

    Accepted: napari ``Image`` layers with integer, float or bool data of at least 2 non-channel
    axes, gray or RGB(A). Refused with a message: Labels/Points/other layers, an ``Image`` whose last
    axis napari read as RGB but has more than 4 entries (cannot happen) or which is (H, 3) (a tiny
    image misread as RGB), empty images, complex or object data.
    """
    from napari.layers import Image, Labels

    if layer is None:
        raise ValueError(
            "no image layer chosen: open an image (File ▸ Open, or File ▸ Open Sample ▸ napari-sam)"
        )
    if isinstance(layer, Labels):
        raise ValueError(f"{layer.name!r} is a Labels layer; choose the image to segment")
    if not isinstance(layer, Image):
        raise ValueError(f"{layer.name!r} is a {type(layer).__name__} layer, not an Image layer")
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    dtype = np.dtype(data.dtype)
    if dtype.kind not in "buif":
        raise ValueError(
            f"layer {layer.name!r} has {dtype} data; napari-sam needs integer, float or bool pixels"
        )
    shape = tuple(int(s) for s in data.shape)
    if 0 in shape:
        raise ValueError(f"layer {layer.name!r} is empty (shape {shape})")
    rgb = bool(layer.rgb)
    spatial_ndim = len(shape) - (1 if rgb else 0)
    if spatial_ndim < 2:
        raise ValueError(
            f"layer {layer.name!r} has shape {shape}{' (read as RGB)' if rgb else ''}: fewer than 2 "
            f"image axes. If its last axis is not colour, reopen it with rgb=False"
        )
    spatial = shape[spatial_ndim - 2 : spatial_ndim]
    if min(spatial) < 8:
        raise ValueError(
            f"layer {layer.name!r} is {spatial[0]}×{spatial[1]} pixels per plane"
            f"{' with RGB read from its last axis' if rgb else ''}: too small to segment. If napari misread "
            f"a channel axis as RGB, reopen it with rgb=False"
        )
    return ImageInfo(spatial_ndim, (int(spatial[0]), int(spatial[1])), tuple(shape[: spatial_ndim - 2]), rgb)


def check_labels_data(layer) -> None:
    """``ValueError`` if a Labels layer cannot hold object ids (float data, wrong rank)."""
    dtype = np.dtype(layer.data.dtype)
    if dtype.kind not in "iub":
        raise ValueError(
            f"Labels layer {layer.name!r} holds {dtype} values; object ids must be integers. "
            f"Convert it with layer.data = layer.data.astype('int32') or choose another layer"
        )


def plane_data(layer, info: ImageInfo, plane: tuple[int, ...]):
    """The (H, W) or (H, W, C) array of one plane of the image layer (lazy arrays stay lazy)."""
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    return data[tuple(plane)] if plane else data


def current_plane(layer, info: ImageInfo, world_point) -> tuple[int, ...]:
    """The leading-axes index of the plane of ``layer`` shown at viewer position ``world_point``.

    Parameters
    ----------
    world_point
        ``viewer.dims.point``: the world position along every viewer axis.
    """
    if not info.lead_shape:
        return ()
    data_pos = np.asarray(layer.world_to_data(world_point), dtype=float)
    lead = np.round(data_pos[: len(info.lead_shape)]).astype(int)
    return tuple(int(np.clip(v, 0, n - 1)) for v, n in zip(lead, info.lead_shape))


def to_image_pixels(source, image_layer, coords: np.ndarray) -> np.ndarray:
    """Map (N, D) data coordinates of layer ``source`` to (N, image.ndim) data coordinates of
    ``image_layer`` through the world frame (honours both layers' scale, translate, rotate, shear,
    affine). A source with fewer axes than the image lands on the image's leading index 0.
    """
    coords = np.asarray(coords, dtype=float)
    if coords.size == 0:
        return np.zeros((0, image_layer.ndim))
    if _same_transform(source, image_layer) and coords.shape[1] == image_layer.ndim:
        return coords.copy()
    out = np.empty((len(coords), image_layer.ndim))
    for i, c in enumerate(coords):
        out[i] = image_layer.world_to_data(source.data_to_world(c))
    return out


def _same_transform(a, b) -> bool:
    if a.ndim != b.ndim:
        return False
    return bool(
        np.allclose(a.affine.affine_matrix, b.affine.affine_matrix)
        and np.allclose(a.scale, b.scale)
        and np.allclose(a.translate, b.translate)
        and np.allclose(a.rotate, b.rotate)
        and np.allclose(a.shear, b.shear)
    )


def transform_kwargs(layer) -> dict:
    """Keyword arguments that give a new layer the same data → world transform as ``layer``."""
    return {
        "scale": np.asarray(layer.scale).copy(),
        "translate": np.asarray(layer.translate).copy(),
        "rotate": np.asarray(layer.rotate).copy(),
        "shear": np.asarray(layer.shear).copy(),
        "affine": np.asarray(layer.affine.affine_matrix).copy(),
    }


def same_layer(a, b) -> bool:
    """Whether ``a`` and ``b`` are the same napari layer. A plugin's viewer hands out a new proxy object
    on every access (napari's ``PublicOnlyProxy``), so ``is`` cannot tell.
    """
    return a is not None and b is not None and getattr(a, "__wrapped__", a) is getattr(b, "__wrapped__", b)
