"""Any image in: dtype, NaN/inf, channels and one robust global intensity scaling per image.

The output of this module is always "display" pixels: float32 in [0, 255], (h, w, 3), ready for a
model's own normalisation (:mod:`napari_sam.embeddings.preprocess`). The scaling is computed once per
image and recorded, so every tile and window of one image is scaled alike and the result can be reproduced.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

MAX_STAT_PIXELS = 4_000_000  # pixels sampled (on a regular stride) for the percentiles
MIN_SIDE = 16  # smallest image side segmented (the smallest tile the models are run on)


class BlankImageError(ValueError):
    """An image or plane with no finite values, or a single value: there is nothing to segment."""


@dataclass(frozen=True)
class IntensityScaling:
    """Per-channel linear map from raw values to [0, 255]: ``(x - low) / (high - low) * 255``, clipped.

    ``method`` is ``"percentile"`` (low/high are the ``percentiles`` of the finite values) or
    ``"identity"`` (uint8 RGB is used as it is).
    """

    low: tuple[float, ...]
    high: tuple[float, ...]
    method: str = "percentile"
    percentiles: tuple[float, float] = (0.1, 99.9)

    def apply(self, block: np.ndarray) -> np.ndarray:
        """(h, w, C) raw block → (h, w, C) float32 in [0, 255]; NaN and ±inf are mapped to 0 and 255."""
        x = np.asarray(block, dtype=np.float32)
        low = np.asarray(self.low, dtype=np.float32)
        span = np.asarray(self.high, dtype=np.float32) - low
        span[span <= 0] = 1.0
        out = (x - low) * (255.0 / span)
        out = np.nan_to_num(out, nan=0.0, posinf=255.0, neginf=0.0)
        return np.clip(out, 0.0, 255.0, out=out)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ImageLayout:
    """How a raw array maps to (H, W, C): which axis holds channels and which channels are used."""

    shape: tuple[int, ...]
    channel_axis: int | None
    channels: tuple[int, ...]  # channels fed to the model (≤ 3); a single one is repeated as gray


def _describe(image) -> str:
    return f"shape {tuple(image.shape)} and dtype {image.dtype}"


def infer_layout(image, channel_axis: int | None = None) -> ImageLayout:
    """Check the array is a 2D image and decide its channel layout.

    Accepted: (H, W); (H, W, 3) RGB; (H, W, 4) RGBA (alpha dropped); any channel count with an explicit
    ``channel_axis`` (the first three channels are used; two channels become red and green).
    """
    shape = tuple(int(s) for s in image.shape)
    dtype = np.dtype(image.dtype)
    if dtype.kind not in "buif":
        raise ValueError(
            f"cannot segment an image with {_describe(image)}: expected integers, floats or booleans"
        )
    if 0 in shape:
        raise ValueError(
            f"the image is empty ({_describe(image)}); expected at least one pixel in every axis"
        )
    layout = _layout(image, shape, channel_axis)
    h, w = (s for a, s in enumerate(shape) if a != layout.channel_axis)
    if min(h, w) < MIN_SIDE:
        raise ValueError(
            f"the image is {h} × {w} pixels: too small to segment (at least {MIN_SIDE} × {MIN_SIDE} "
            f"pixels are needed)"
        )
    return layout


def _layout(image, shape: tuple[int, ...], channel_axis: int | None) -> ImageLayout:
    ndim = len(shape)
    if channel_axis is not None:
        if ndim != 3:
            raise ValueError(
                f"channel_axis={channel_axis} needs a 3D (H, W, C) or (C, H, W) array, got {_describe(image)}"
            )
        axis = channel_axis % ndim
        n = shape[axis]
        return ImageLayout(shape, axis, tuple(range(min(n, 3))))
    if ndim == 2:
        return ImageLayout(shape, None, (0,))
    if ndim == 3 and shape[-1] in (3, 4):
        return ImageLayout(shape, 2, (0, 1, 2))
    raise ValueError(
        f"expected a 2D image (H, W), RGB/RGBA (H, W, 3|4) or a multichannel image with channel_axis=, got "
        f"{_describe(image)}. For a (Z, Y, X) or (T, Y, X) stack pass stack_axis=0 (the plane axis); for "
        f"channels first pass channel_axis=0."
    )


def to_hwc(image, layout: ImageLayout):
    """Raw array (numpy or dask) → (H, W, c) view with only the used channels (c = 1..3)."""
    if layout.channel_axis is None:
        return image[..., None]
    if layout.channel_axis != 2:
        axes = [a for a in range(3) if a != layout.channel_axis] + [layout.channel_axis]
        image = image.transpose(axes)
    return image[..., list(layout.channels)]


def _sample(hwc):
    h, w = hwc.shape[:2]
    step = max(1, int(np.ceil(np.sqrt(h * w / MAX_STAT_PIXELS))))
    sample = hwc[::step, ::step]
    if hasattr(sample, "compute"):
        sample = sample.compute()
    return np.asarray(sample)


def compute_scaling(
    hwc, *, percentiles: tuple[float, float] = (0.1, 99.9), rgb_uint8_identity: bool = True
) -> IntensityScaling:
    """One global scaling for an (H, W, c) image, from a strided sample (never the whole image at once).

    Raises ``ValueError`` for an all-NaN or constant image.
    """
    c = hwc.shape[-1]
    if rgb_uint8_identity and c == 3 and np.dtype(hwc.dtype) == np.uint8:
        return IntensityScaling((0.0,) * 3, (255.0,) * 3, "identity", percentiles)
    sample = _sample(hwc).reshape(-1, c).astype(np.float64)
    lows, highs = [], []
    for ch in range(c):
        values = sample[:, ch]
        values = values[np.isfinite(values)]
        if values.size == 0:
            raise BlankImageError("the image has no finite values (all NaN or inf): nothing to segment")
        lo, hi = np.percentile(values, percentiles)
        if hi <= lo:  # strongly peaked histogram: fall back to the full range
            lo, hi = float(values.min()), float(values.max())
        lows.append(float(lo))
        highs.append(float(hi))
    if all(hi <= lo for lo, hi in zip(lows, highs)):
        raise BlankImageError(
            f"the image is constant (every finite pixel is {lows[0]:g}): there is nothing to segment; "
            f"check that the right layer or channel was chosen"
        )
    return IntensityScaling(tuple(lows), tuple(highs), "percentile", percentiles)


def check_not_blank(hwc, what: str = "the image") -> None:
    """``BlankImageError`` when a strided sample of an (H, W, c) image has no finite value or only one.

    The same test :func:`compute_scaling` applies to a whole image, for one plane of a stack.
    """
    sample = _sample(hwc).astype(np.float64, copy=False)
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        raise BlankImageError(f"{what} has no finite values (all NaN or inf): nothing to segment")
    if finite.min() == finite.max():
        raise BlankImageError(
            f"{what} is constant (every finite pixel is {finite.flat[0]:g}): there is nothing to segment"
        )


def to_rgb255(block: np.ndarray, scaling: IntensityScaling) -> np.ndarray:
    """(h, w, c) raw block → (h, w, 3) float32 in [0, 255] (gray repeated, two channels + zero blue)."""
    scaled = scaling.apply(block)
    c = scaled.shape[-1]
    if c == 3:
        return scaled
    if c == 1:
        return np.repeat(scaled, 3, axis=-1)
    return np.concatenate([scaled, np.zeros_like(scaled[..., :1])], axis=-1)


@dataclass
class PreparedImage:
    """A 2D image ready to be cut into model inputs.

    Attributes
    ----------
    data
        (H, W, c) raw values, numpy or dask (lazy for large inputs).
    scaling
        The recorded global intensity scaling.
    layout
        How the caller's array was read.
    """

    data: object
    scaling: IntensityScaling
    layout: ImageLayout

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.data.shape[0]), int(self.data.shape[1])

    def region(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """Rows [r0, r1) and columns [c0, c1), clipped to the image, as (h, w, 3) float32 in [0, 255]."""
        h, w = self.shape
        block = self.data[max(r0, 0) : min(r1, h), max(c0, 0) : min(c1, w)]
        if hasattr(block, "compute"):
            block = block.compute()
        return to_rgb255(np.asarray(block), self.scaling)


def prepare_image(
    image,
    *,
    channel_axis: int | None = None,
    scaling: IntensityScaling | None = None,
    percentiles: tuple[float, float] = (0.1, 99.9),
) -> PreparedImage:
    """Validate a 2D image (numpy, dask or zarr) and compute its global intensity scaling.

    Parameters
    ----------
    image
        (H, W), (H, W, 3|4), or multichannel with ``channel_axis``; any integer, float or bool dtype;
        NaN and inf allowed.
    channel_axis
        Axis holding channels, for images other than plain gray/RGB/RGBA.
    scaling
        Reuse a recorded scaling (e.g. the one of the stack this plane belongs to).
    """
    if not hasattr(image, "shape") or not hasattr(image, "dtype"):
        image = np.asarray(image)
    layout = infer_layout(image, channel_axis)
    hwc = to_hwc(image, layout)
    if scaling is None:
        scaling = compute_scaling(hwc, percentiles=percentiles)
    return PreparedImage(hwc, scaling, layout)
