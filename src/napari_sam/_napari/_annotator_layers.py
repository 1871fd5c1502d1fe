"""The annotator's four layers over one image layer: prompts (Points), shapes (Shapes), the preview
(Labels) and the committed objects (Labels), all with the image layer's transform.

The preview is painted from a :class:`~napari_sam.prediction.result.Prediction`'s crops, clearing only the
pixels painted before, so an update costs in proportion to the object, not to the image.
"""

from __future__ import annotations

import warnings

import numpy as np

from napari_sam._napari._layers import ImageInfo, transform_kwargs
from napari_sam._napari._prompts import NEGATIVE, POSITIVE, PROMPT_FEATURE

PROMPT_COLOURS = {POSITIVE: "#00ff44", NEGATIVE: "#ff2060"}
PREVIEW_COLOUR = "#ffd000"
# The preview is an outline, never filled, so it cannot be mistaken for the filled committed objects:
PREVIEW_OPACITY = 1.0  # a refined (final) preview: a thick opaque yellow outline
PREVIEW_CONTOUR = 2
ROUGH_OPACITY = 0.6  # a rough (quick) preview, while the zoom window is refined: thin and translucent
ROUGH_CONTOUR = 1
# napari computes a Labels layer's contour over the whole plane on every refresh (about 1 s for 4096² on
# two cores, on the main thread): above this many pixels per plane the painter draws the outline itself,
# from the mask's crop only, with napari's contour off
OWN_OUTLINE_PIXELS = 2048 * 2048
OBJECTS_SUFFIX = " SAM objects"  # the committed objects' layer: "<image> SAM objects"


def outline(mask: np.ndarray, width: int) -> np.ndarray:
    """The pixels of ``mask`` (h, w) bool within ``width`` pixels of its edge (the crop's border counts
    as outside).
    """
    from scipy.ndimage import binary_erosion

    return mask & ~binary_erosion(mask, iterations=int(width), border_value=0)


def _get_or_add(viewer, name: str, factory):
    if name in viewer.layers:
        return viewer.layers[name]
    return viewer.add_layer(factory())


def _layer_factories(image_layer, info: ImageInfo, objects_data: np.ndarray) -> list[tuple[str, object]]:
    """(name, factory) of the four layers, in the order they are added: objects, preview, boxes, points."""
    import pandas as pd
    from napari.layers import Labels, Points, Shapes
    from napari.utils.colormaps import DirectLabelColormap

    base = image_layer.name
    tf = transform_kwargs(image_layer)
    ndim = info.ndim
    size = min(10.0, max(3.0, 0.012 * max(info.spatial_shape)))  # data pixels: nuclei stay visible

    def points():
        kinds = pd.Categorical([], categories=[POSITIVE, NEGATIVE])
        return Points(
            np.zeros((0, ndim)),
            ndim=ndim,
            name=f"{base} SAM points",
            features=pd.DataFrame({PROMPT_FEATURE: kinds}),
            feature_defaults={PROMPT_FEATURE: POSITIVE},
            face_color=PROMPT_FEATURE,
            face_color_cycle=dict(PROMPT_COLOURS),
            border_color="white",
            border_width=0.1,
            size=size,
            **tf,
        )

    def shapes():
        return Shapes(
            ndim=ndim,
            name=f"{base} SAM boxes",
            edge_color="#00c8ff",
            face_color="transparent",
            edge_width=max(1.0, size / 4),
            **tf,
        )

    def preview():
        cmap = DirectLabelColormap(color_dict={None: PREVIEW_COLOUR, 0: "transparent"})
        layer = Labels(
            np.zeros((*info.lead_shape, *info.spatial_shape), dtype=np.uint8),
            name=f"{base} SAM preview",
            opacity=PREVIEW_OPACITY,
            colormap=cmap,
            **tf,
        )
        if int(np.prod(info.spatial_shape)) <= OWN_OUTLINE_PIXELS:  # larger: the painter outlines
            layer.contour = PREVIEW_CONTOUR  # an outline (not a keyword of Labels in every napari version)
        return layer

    def objects():
        return Labels(objects_data, name=f"{base}{OBJECTS_SUFFIX}", opacity=0.5, **tf)

    return [
        (f"{base}{OBJECTS_SUFFIX}", objects),
        (f"{base} SAM preview", preview),
        (f"{base} SAM boxes", shapes),
        (f"{base} SAM points", points),
    ]


def missing_layer_steps(viewer, image_layer, info: ImageInfo, objects_data: np.ndarray) -> list:
    """One callable per prompt layer not in ``viewer`` yet, each adding that layer. A large image's
    layer takes napari up to a second to create on the main thread: a front end runs one per event-loop
    turn, so the viewer repaints between them instead of freezing for all four.
    """
    return [
        (lambda factory=factory: viewer.add_layer(factory()))
        for name, factory in _layer_factories(image_layer, info, objects_data)
        if name not in viewer.layers
    ]


def make_prompt_layers(viewer, image_layer, info: ImageInfo, objects_data: np.ndarray):
    """Add (or reuse) the Points, Shapes, preview and objects layers for ``image_layer``.

    Returns
    -------
    (points, shapes, preview, objects)
        ``objects.data`` is ``objects_data`` itself (a view of the session's committed labels).
    """
    (obj_name, objects), (pre_name, preview), (shp_name, shapes), (pts_name, points) = _layer_factories(
        image_layer, info, objects_data
    )
    obj_layer = _get_or_add(viewer, obj_name, objects)
    if obj_layer.data is not objects_data:
        obj_layer.data = objects_data
    pre_layer = _get_or_add(viewer, pre_name, preview)
    shp_layer = _get_or_add(viewer, shp_name, shapes)
    pts_layer = _get_or_add(viewer, pts_name, points)
    pts_layer.feature_defaults = {PROMPT_FEATURE: POSITIVE}
    return pts_layer, shp_layer, pre_layer, obj_layer


class PreviewPainter:
    """Paints predictions into the preview Labels layer (object k gets value k + 1): a thick opaque
    outline for a final answer, a thin translucent one for a provisional (rough) one (committed objects
    are filled).

    Pixels are written with :meth:`napari.layers.Labels.data_setitem`, so napari re-colours and
    re-uploads only the changed region, not the whole plane (which matters for large images). That
    method also records each write for Ctrl-Z; a preview is not an edit to undo and the records (every
    changed pixel's index) would pile up, so they are dropped. Where a napari version no longer lets
    them be dropped, the painter writes the array and refreshes the whole layer instead.
    """

    def __init__(self, layer, info: ImageInfo) -> None:
        self.layer = layer
        self.info = info
        self._painted: tuple | None = None  # (plane, r0, r1, c0, c1)
        self.provisional = False
        self.own_outline = int(np.prod(layer.data.shape[-2:])) > OWN_OUTLINE_PIXELS
        if self.own_outline:
            layer.contour = 0

    def _set_look(self, provisional: bool) -> None:
        """Thin (provisional) or thick (final) outline: set only when it changes (it redraws the layer)."""
        contour = ROUGH_CONTOUR if provisional else PREVIEW_CONTOUR
        if self.own_outline:
            self.provisional = provisional
            self.layer.opacity = ROUGH_OPACITY if provisional else PREVIEW_OPACITY
            return
        if provisional == self.provisional and self.layer.contour == contour:
            return
        self.provisional = provisional
        self.layer.contour = contour
        self.layer.opacity = ROUGH_OPACITY if provisional else PREVIEW_OPACITY

    def _painted_pixels(self) -> tuple | None:
        """Full-rank indices of the non-zero pixels painted last time."""
        if self._painted is None:
            return None
        plane, r0, r1, c0, c1 = self._painted
        rows, cols = np.nonzero(self.layer.data[plane][r0:r1, c0:c1])
        return self._index(plane, rows + r0, cols + c0)

    @staticmethod
    def _index(plane: tuple, rows: np.ndarray, cols: np.ndarray) -> tuple:
        return (*(np.full(rows.size, p, dtype=np.intp) for p in plane), rows, cols)

    def _undo_records(self):
        """The layer's undo records (a deque), or None where napari does not expose them."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # napari flags private access from plugins
            records = getattr(self.layer, "_undo_history", None)
        return records if hasattr(records, "clear") else None

    def _write(self, index: tuple | None, value, refresh: bool) -> None:
        partial = self._undo_records() is not None
        if index is not None and index[-1].size:
            if partial:
                self.layer.data_setitem(index, value, refresh=refresh)
                return
            self.layer.data[index] = value
        if refresh:
            self.layer.refresh()

    def _forget_history(self) -> None:
        records = self._undo_records()
        if records is not None:
            records.clear()

    def clear(self, refresh: bool = True) -> None:
        old = self._painted_pixels()
        self._painted = None
        self._write(old, 0, refresh)
        self._forget_history()

    def paint(
        self, prediction, plane: tuple[int, ...], candidate: int | None = None, provisional: bool = False
    ) -> int:
        """Show ``prediction`` (candidate ``candidate`` or each object's best) on ``plane``, as an outline
        when ``provisional``; returns the number of foreground pixels painted.
        """
        self._set_look(provisional)
        plane = tuple(plane)
        rows, cols, values = [], [], []
        box = None
        for k, (crop, (r, c)) in enumerate(zip(prediction.crops, prediction.offsets)):
            m = prediction.best_index(k) if candidate is None else candidate
            shown = crop[m]
            if self.own_outline:
                shown = outline(shown, ROUGH_CONTOUR if provisional else PREVIEW_CONTOUR)
            rr, cc = np.nonzero(shown)
            if rr.size == 0:
                continue
            rows.append(rr + r)
            cols.append(cc + c)
            values.append(np.full(rr.size, k + 1, dtype=self.layer.data.dtype))
            b = (rows[-1].min(), rows[-1].max() + 1, cols[-1].min(), cols[-1].max() + 1)
            box = (
                b
                if box is None
                else (min(box[0], b[0]), max(box[1], b[1]), min(box[2], b[2]), max(box[3], b[3]))
            )
        count = int(sum(v.size for v in values))
        self.clear(refresh=count == 0)
        if count:
            self._write(
                self._index(plane, np.concatenate(rows), np.concatenate(cols)),
                np.concatenate(values),
                refresh=True,
            )
            self._forget_history()
            self._painted = (plane, *box)
        return count


def install_negative_click(points_layer, is_negative_mode) -> None:
    """Shift-click (or the negative mode) adds a negative point; a plain click a positive one.

    A press callback, run before the layer's own 'add' callback, sets the feature default for the
    point that the click will add.
    """

    def _choose_polarity(layer, event):
        if layer.mode == "add":
            negative = is_negative_mode() or "Shift" in event.modifiers
            layer.feature_defaults = {PROMPT_FEATURE: NEGATIVE if negative else POSITIVE}

    _choose_polarity.__napari_sam__ = True
    callbacks = points_layer.mouse_drag_callbacks
    for cb in list(callbacks):
        if getattr(cb, "__napari_sam__", False):
            callbacks.remove(cb)
    callbacks.insert(0, _choose_polarity)
