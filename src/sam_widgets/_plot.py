"""One-line matplotlib figures of an image with its labels."""

from __future__ import annotations

import numpy as np

from napari_sam.image.normalize import prepare_image


def label_colors(labels: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """(H, W, 4) float RGBA: every non-zero id gets a stable colour (golden-ratio hues), background clear.

    The same id → colour rule as the widget's JavaScript, so figures and canvas agree.
    """
    import colorsys

    labels = np.asarray(labels)
    ids, inverse = np.unique(labels, return_inverse=True)
    table = np.zeros((len(ids), 4), dtype=np.float32)
    for n, i in enumerate(ids):
        if i != 0:
            hue = (int(i) * 0.618033988749895) % 1.0
            table[n, :3] = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
            table[n, 3] = alpha
    return table[inverse.reshape(labels.shape)]


def show_overlay(
    image,
    labels=None,
    *,
    ax=None,
    alpha: float = 0.45,
    outlines: bool = True,
    channel_axis: int | None = None,
    contrast_limits: tuple[float, float] | None = None,
    max_size: int = 2048,
    title: str | None = None,
):
    """Plot ``image`` with ``labels`` over it, in one line.

    Parameters
    ----------
    image
        (H, W), (H, W, 3|4), or multichannel with ``channel_axis``; numpy, dask or zarr. Shown with the
        same global intensity scaling the model sees, or with ``contrast_limits`` (low, high) raw units.
    labels
        (H, W) integer label image (0 = background), e.g. ``widget.labels``; None shows the image only.
    ax
        A matplotlib Axes to draw into (default: a new figure).
    outlines
        Draw each object's boundary in full colour on top of the translucent fill.
    max_size
        Images larger than this (longest side) are shown subsampled, so large images plot quickly.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    from sam_widgets._tiles import render

    prepared = prepare_image(image, channel_axis=channel_axis)
    h, w = prepared.shape
    step = max(1, int(np.ceil(max(h, w) / max_size)))
    pixels = render(prepared, 0, h, 0, w, step, contrast_limits)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6 * h / max(w, 1)))
    extent = (-0.5, w - 0.5, h - 0.5, -0.5)
    ax.imshow(
        pixels,
        cmap="gray" if pixels.ndim == 2 else None,
        vmin=0,
        vmax=255,
        extent=extent,
        interpolation="nearest",
    )
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (h, w):
            raise ValueError(f"labels of shape {labels.shape} do not match the image's {(h, w)}")
        sub = labels[::step, ::step]
        ax.imshow(label_colors(sub, alpha), extent=extent, interpolation="nearest")
        if outlines and sub.any():
            from skimage.segmentation import find_boundaries

            edge = find_boundaries(sub, mode="inner")
            rgba = label_colors(np.where(edge, sub, 0), 1.0)
            ax.imshow(rgba, extent=extent, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax
