"""Automatic segmentation of every plane of a (Z, Y, X) or (T, Y, X) stack, linked into 3D labels."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from napari_sam.automatic.everything import default_params, resolve_mode, resolve_model, segment_everything
from napari_sam.automatic.merge import link_planes
from napari_sam.image.normalize import IntensityScaling
from napari_sam.models.loading import SamModel


def segment_stack(
    stack,
    *,
    stack_axis: int = 0,
    channel_axis: int | None = None,
    model: SamModel | str | None = None,
    mode: str | None = None,
    params=None,
    link: bool = True,
    min_link_iou: float = 0.3,
    scaling: IntensityScaling | None = None,
    device: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    **kwargs,
) -> np.ndarray:
    """Segment every plane with :func:`segment_everything` (one global intensity scaling).

    Parameters
    ----------
    stack
        A stack with planes along ``stack_axis`` (numpy, dask or zarr).
    link
        True: one id per object through the planes (overlap-based linking, IoU ≥ ``min_link_iou``);
        False: each plane labelled on its own (ids restart at 1 in every plane).
    progress
        Called as ``progress(planes_done, planes_total)``.
    kwargs
        Passed on to :func:`segment_everything` (tiling, etc.).

    Returns
    -------
    numpy.ndarray
        (P, H, W) int32 labels, planes first.
    """
    from napari_sam.image.planes import make_source

    net = resolve_model(model, device)
    chosen = resolve_mode(net, mode)
    p = default_params(chosen, params)
    source = make_source(stack, stack_axis=stack_axis, channel_axis=channel_axis, scaling=scaling)
    n = source.num_planes
    planes = []
    for z in range(n):
        planes.append(segment_everything(source.plane(z), model=net, mode=chosen, params=p, **kwargs))
        if progress is not None:
            progress(z + 1, n)
    out = np.stack(planes)
    return link_planes(out, min_link_iou) if link else out
