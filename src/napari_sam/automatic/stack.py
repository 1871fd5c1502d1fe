"""Automatic segmentation of every plane of a (Z, Y, X) or (T, Y, X) stack, linked into 3D labels."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from napari_sam.automatic.box_mode import BoxModeParams
from napari_sam.automatic.everything import default_params, resolve_mode, resolve_model, segment_everything
from napari_sam.automatic.merge import link_planes
from napari_sam.image.normalize import IntensityScaling, PreparedImage
from napari_sam.models.loading import SamModel

LINK_MIN_OVERLAP = 0.5  # of the smaller object: neighbouring planes' objects linked at this overlap
LINK_MEASURE = "smaller"
LINK_MAX_GAP = 1  # an object missed on this many planes keeps its id


def link_stack(planes: np.ndarray, min_overlap: float = LINK_MIN_OVERLAP) -> np.ndarray:
    """(Z, H, W) per-plane labels of segment everything → 3D labels, linked as :func:`segment_stack`
    links them (overlap of the smaller object, an object missed on one plane keeps its id).
    """
    return link_planes(planes, min_overlap, measure=LINK_MEASURE, max_gap=LINK_MAX_GAP)


def segment_stack(
    stack,
    *,
    stack_axis: int = 0,
    channel_axis: int | None = None,
    model: SamModel | str | None = None,
    mode: str | None = None,
    params=None,
    link: bool = True,
    min_link_iou: float = LINK_MIN_OVERLAP,
    link_measure: str = LINK_MEASURE,
    max_gap: int = LINK_MAX_GAP,
    scaling: IntensityScaling | None = None,
    device: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    infos: list | None = None,
    **kwargs,
) -> np.ndarray:
    """Segment every plane with :func:`segment_everything` (one global intensity scaling).

    Parameters
    ----------
    stack
        A stack with planes along ``stack_axis`` (numpy, dask or zarr).
    link
        True: one id per object through the planes (overlap-based linking,
        :func:`~napari_sam.automatic.merge.link_planes`); False: each plane labelled on its own (ids
        restart at 1 in every plane).
    min_link_iou, link_measure, max_gap
        Objects of neighbouring planes are one object when their overlap (``"smaller"``: the
        intersection over the smaller one's area, which suits anisotropic stacks whose objects change
        size quickly through z; or ``"iou"``) is at least ``min_link_iou``; an object missed on up to
        ``max_gap`` planes keeps its id.
    progress
        Called as ``progress(planes_done, planes_total)``.
    infos
        A list to which each plane's info dict (:func:`segment_everything`'s ``return_info``) is
        appended, in plane order (for a summary such as
        :func:`~napari_sam.automatic.summary.describe_reading`).
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
    noise: dict = {}  # whether the stack was denoised, for each plane's info
    if chosen == "boxes":
        reading, source = read_stack(net, source, p)
        p, noise = reading.params, reading.evidence
    planes = []
    for z in range(n):
        labels, info = segment_everything(
            source.plane(z), model=net, mode=chosen, params=p, return_info=True, **kwargs
        )
        planes.append(labels)
        if infos is not None:
            infos.append({**info, **noise})
        if progress is not None:
            progress(z + 1, n)
    out = np.stack(planes)
    return link_planes(out, min_link_iou, measure=link_measure, max_gap=max_gap) if link else out


@dataclass(frozen=True)
class StackReading:
    """How a whole stack is read in box mode, decided once (:func:`read_stack`) and used for every plane.

    Attributes
    ----------
    params
        The box-mode settings with the stack's polarity, object size, flattening, foreground threshold
        and zoom fixed, and ``denoise`` False (decided for the stack: see ``denoised_scaling``).
    denoised_scaling
        None, or, when the stack is read denoised, the intensity scaling of its denoised planes: each
        plane is then denoised and scaled with it (:meth:`plane`).
    evidence
        ``{"denoised": bool, "contrast_to_noise": ratio or None}``, for each plane's info.
    """

    params: BoxModeParams
    denoised_scaling: IntensityScaling | None = None
    evidence: dict = field(default_factory=dict)

    def plane(self, image: PreparedImage) -> PreparedImage:
        """A plane (prepared with the stack's scaling) as the stack's planes are segmented: denoised and
        scaled with :attr:`denoised_scaling` when the stack is read denoised, else ``image`` itself.
        """
        if self.denoised_scaling is None:
            return image
        from napari_sam.automatic.denoise import denoised

        return PreparedImage(denoised(image, scaling=image.scaling).data, self.denoised_scaling, image.layout)


def read_stack(model: SamModel, source, params: BoxModeParams) -> tuple[StackReading, object]:
    """Read a stack once for box mode: denoise every plane or none, one polarity, object size, foreground
    threshold (:func:`read_stack_once`) and zoom (:func:`~napari_sam.automatic.box_mode.fix_zoom`) for
    all planes, each read from the planes with the most contrast.

    Parameters
    ----------
    model
        The loaded model (the zoom is chosen by its scores).
    source
        A :class:`~napari_sam.image.planes.PlaneSource` of the stack.
    params
        Box-mode settings; those given explicitly stay.

    Returns
    -------
    reading
        The :class:`StackReading`.
    planes
        What the planes are segmented from: ``source``, or its denoised view (same ``plane(z)``).
    """
    from napari_sam.automatic.box_mode import fix_zoom
    from napari_sam.automatic.denoise import stack_view

    # denoised or not, every plane alike, and the stack is read from the planes segmented
    view, noise = stack_view(source, params.denoise, contrast_planes(source, 5))
    p = read_stack_once(view, dataclasses.replace(params, denoise=False))
    if p.zoom_factor == "auto":  # one zoom for all planes, chosen on the planes with most contrast
        p, _ = fix_zoom(model, [view.plane(z) for z in contrast_planes(view, 3)], p)
    scaling = view.scaling if noise.get("denoised") else None
    return StackReading(p, scaling, noise), view


def contrast_planes(source, count: int) -> list[int]:
    """Indices of up to ``count`` planes with the most contrast (standard deviation), of at most 16
    planes spread through the stack.
    """
    n = source.num_planes
    step = max(1, n // 16)  # look at no more than 16 planes to choose from
    candidates = list(range(0, n, step))
    spread = []
    for z in candidates:
        plane = source.plane(z)
        h, w = plane.shape
        spread.append(float(plane.region(0, h, 0, w).astype(np.float32).std()))
    return [candidates[i] for i in np.argsort(spread)[::-1][:count]]


def read_stack_once(source, params: BoxModeParams, max_planes: int = 5) -> BoxModeParams:
    """Box-mode settings with one polarity, object size and foreground threshold for the whole stack.

    Dim planes at the ends of a stack show few objects and mostly noise; their own reading would be
    unreliable, and Otsu's threshold of a plane of pure noise cuts the noise in two. The polarity
    (majority), diameter and foreground threshold (medians) are read from up to ``max_planes`` planes
    with the most contrast, and every plane is segmented with them (settings given stay).
    """
    from napari_sam.automatic.box_mode import SMALL_OBJECT_FRACTION, proposal_sigma
    from napari_sam.automatic.polarity import bright_objects
    from napari_sam.automatic.proposals import foreground_mask
    from napari_sam.automatic.scale import estimate_diameter

    if params.diameter is not None and params.polarity != "auto" and params.threshold is not None:
        return params
    chosen = contrast_planes(source, max_planes)
    polarities, diameters, images, regions = [], [], [], []
    for z in chosen:
        plane = source.plane(z)
        h, w = plane.shape
        regions.append(plane.region(0, h, 0, w))
        bright, reading = bright_objects(regions[-1], params.polarity)
        polarities.append(reading["polarity"])
        images.append(bright)
        d = estimate_diameter(bright, near=params.size_hint)
        if d > 0:
            diameters.append(d)
    changes: dict = {}
    if params.polarity == "auto":
        changes["polarity"] = max(set(polarities), key=polarities.count)
    if params.diameter is None and diameters:
        changes["diameter"] = float(np.median(diameters))
    # the proposals' diameter and smoothing, as every plane will use them
    d = SMALL_OBJECT_FRACTION * changes.get("diameter", params.diameter or 0.0)
    sigma = params.sigma if params.sigma is not None else proposal_sigma(d)
    if params.flatten == "auto" and diameters:
        # flatten every plane or none: the majority of the contrast-richest planes' decisions
        from napari_sam.automatic.background import needs_flattening

        votes = [needs_flattening(bright, d, sigma)[0] for bright in images]
        changes["flatten"] = sum(votes) > len(votes) / 2
    if params.threshold is None and diameters and not changes.get("flatten", params.flatten):
        # one foreground threshold for every plane: Otsu's on the planes with the most contrast, read
        # with the stack's polarity (its one intensity scaling makes planes comparable)
        polarity = changes.get("polarity", params.polarity)
        levels = []
        for own, bright, region in zip(polarities, images, regions):
            if polarity != "auto" and own != polarity:  # this plane alone read the other polarity
                bright = bright_objects(region, polarity)[0]
            levels.append(foreground_mask(bright, sigma)[2])
        changes["threshold"] = float(np.median(levels))
    return dataclasses.replace(params, **changes)
