"""A 2D image or a (Z, Y, X) / (T, Y, X) stack as a sequence of planes sharing one global intensity
scaling; each plane is served as a lazy :class:`~napari_sam.image.normalize.PreparedImage`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from napari_sam.image import normalize as image_mod
from napari_sam.image.normalize import (
    ImageLayout,
    IntensityScaling,
    PreparedImage,
    check_not_blank,
    compute_scaling,
    infer_layout,
    to_hwc,
)

MAX_SCALING_PLANES = 8  # planes sampled (evenly spaced) for a stack's global scaling
MAX_ASPECT = 20  # a plane more elongated than this gets a warning before anything is encoded
MAX_CHECKED_LAZY_PIXELS = 16_000_000  # lazy planes larger than this are not sampled by check_content


@dataclass
class PlaneSource:
    """Planes of an image.

    Attributes
    ----------
    data
        (P, ...) raw array with the stack axis first (P = 1 for a 2D image), numpy or dask; each
        ``data[p]`` is a 2D image as :func:`~napari_sam.image.normalize.infer_layout` reads it.
    layout
        The layout of one plane.
    scaling
        One global scaling for every plane.
    stack_axis
        The caller's stack axis, or None for a 2D image.
    """

    data: object
    layout: ImageLayout
    scaling: IntensityScaling
    stack_axis: int | None
    checked: set = field(default_factory=set)  # planes whose content passed check_content

    @property
    def is_stack(self) -> bool:
        return self.stack_axis is not None

    @property
    def num_planes(self) -> int:
        return int(self.data.shape[0])

    @property
    def plane_shape(self) -> tuple[int, int]:
        """(H, W) of one plane."""
        return self.plane(0).shape

    def check_content(self, plane: int) -> None:
        """``BlankImageError`` (a ``ValueError``) when plane ``plane`` is all NaN/inf or constant, the
        check a 2D image gets when its scaling is computed. Remembered per plane; lazy planes above
        :data:`MAX_CHECKED_LAZY_PIXELS` are not sampled (that would read the whole plane).
        """
        p = self.check_plane(plane)
        if p in self.checked:
            return
        hwc = self.plane(p).data
        h, w = hwc.shape[:2]
        if isinstance(hwc, np.ndarray) or h * w <= MAX_CHECKED_LAZY_PIXELS:
            what = f"plane {p} of the stack" if self.is_stack else "the image"
            check_not_blank(hwc, what)
        self.checked.add(p)

    def check_plane(self, plane: int) -> int:
        p = int(plane)
        if not 0 <= p < self.num_planes:
            raise ValueError(
                f"plane {plane} does not exist: this image has {self.num_planes} plane(s), 0…"
                f"{self.num_planes - 1}"
            )
        return p

    def arguments(self) -> tuple[object, dict]:
        """``(image, kwargs)`` that make this source again (:func:`make_source`, ``set_image``,
        ``segment_stack``): the data as given (a stack with its planes first, or the one 2D image) and
        its ``stack_axis``, ``channel_axis`` and ``scaling``.
        """
        channel = self.layout.channel_axis
        if self.is_stack:
            channel = None if channel is None else channel + 1  # the planes' axis comes first
            return self.data, {"stack_axis": 0, "channel_axis": channel, "scaling": self.scaling}
        return self.data[0], {"stack_axis": None, "channel_axis": channel, "scaling": self.scaling}

    def plane(self, plane: int) -> PreparedImage:
        """Plane ``plane`` as a lazy (H, W, c) prepared image with the global scaling."""
        p = self.check_plane(plane)
        return PreparedImage(to_hwc(self.data[p], self.layout), self.scaling, self.layout)


def _lazy(image):
    if type(image).__module__.startswith("zarr"):
        from napari_sam.io.images import as_dask

        return as_dask(image)
    if not hasattr(image, "shape") or not hasattr(image, "dtype"):
        return np.asarray(image)
    return image


def stack_scaling(data, layout: ImageLayout) -> IntensityScaling:
    """The global scaling of a (P, ...) stack from strided samples of up to 8 evenly spaced planes."""
    p = int(data.shape[0])
    chosen = sorted(set(np.linspace(0, p - 1, min(p, MAX_SCALING_PLANES)).round().astype(int).tolist()))
    h, w = to_hwc(data[0], layout).shape[:2]
    step = max(1, int(np.ceil(np.sqrt(h * w * len(chosen) / image_mod.MAX_STAT_PIXELS))))
    samples = []
    for i in chosen:
        s = to_hwc(data[i], layout)[::step, ::step]
        samples.append(np.asarray(s.compute() if hasattr(s, "compute") else s))
    return compute_scaling(np.concatenate(samples, axis=0))


def make_source(
    image,
    *,
    stack_axis: int | None = None,
    channel_axis: int | None = None,
    scaling: IntensityScaling | None = None,
) -> PlaneSource:
    """Validate an image or stack and compute its one global scaling.

    Parameters
    ----------
    image
        2D: (H, W), (H, W, 3|4) or multichannel with ``channel_axis``. Stack: any of those with one more
        axis, ``stack_axis``. numpy, dask or zarr (zarr is read through dask).
    stack_axis
        The plane axis (Z or T) of a stack, in ``image``'s axes.
    channel_axis
        The channel axis in ``image``'s axes (for a stack too).
    scaling
        Reuse a recorded scaling instead of computing one.
    """
    source = _make_source(image, stack_axis, channel_axis, scaling)
    _warn_if_elongated(source.plane_shape)
    return source


def _warn_if_elongated(shape: tuple[int, int]) -> None:
    h, w = shape
    if max(h, w) > MAX_ASPECT * min(h, w):
        warnings.warn(
            f"the image is {h} × {w} pixels ({max(h, w) / min(h, w):.0f} times longer than wide): it is cut "
            f"into many mostly empty model inputs, which is slow; check its axes (a stack or a line scan "
            f"read as one image?) or crop it",
            UserWarning,
            stacklevel=3,
        )


def _make_source(image, stack_axis, channel_axis, scaling) -> PlaneSource:
    image = _lazy(image)
    if stack_axis is None:
        layout = infer_layout(image, channel_axis)
        checked = set()
        if scaling is None:
            scaling = compute_scaling(to_hwc(image, layout))  # exactly the core's 2D scaling
            checked.add(0)  # compute_scaling refuses blank images
        return PlaneSource(image[None], layout, scaling, None, checked)
    ndim = len(image.shape)
    if ndim < 3:
        raise ValueError(
            f"stack_axis={stack_axis} needs a stack of 2D planes (3 or 4 axes); got shape "
            f"{tuple(image.shape)}. For a single 2D image leave stack_axis out."
        )
    axis = stack_axis % ndim
    if channel_axis is not None and channel_axis % ndim == axis:
        raise ValueError(
            f"stack_axis and channel_axis are both {axis}; the planes and the channels must be different axes"
        )
    plane_channel_axis = None
    if channel_axis is not None:
        c = channel_axis % ndim
        plane_channel_axis = c - 1 if c > axis else c
    data = image if axis == 0 else _moveaxis(image, axis)
    layout = infer_layout(data[0], plane_channel_axis)
    if scaling is None:
        scaling = stack_scaling(data, layout)
    return PlaneSource(data, layout, scaling, axis)


def _moveaxis(image, axis: int):
    order = [axis] + [a for a in range(len(image.shape)) if a != axis]
    return image.transpose(order)
