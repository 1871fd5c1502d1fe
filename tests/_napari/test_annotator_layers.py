"""The preview painter on a real napari Labels layer: it writes only the object's pixels, clears what it
painted before, and leaves no undo records behind (also where napari hides them)."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Labels

from napari_sam._napari._annotator_layers import PreviewPainter
from napari_sam.geometry.windows import Window
from napari_sam.prediction.result import Prediction

pytestmark = pytest.mark.gui


def _prediction(masks_at: list[tuple[np.ndarray, tuple[int, int]]], shape=(60, 80)) -> Prediction:
    crops = [m[None] for m, _ in masks_at]
    k = len(crops)
    return Prediction(
        crops,
        [o for _, o in masks_at],
        np.full((k, 1), 0.9, np.float32),
        np.zeros((k, 1, 256, 256), np.float32),
        [Window(0, 0, 80)] * k,
        shape,
    )


def _disk(radius: int) -> np.ndarray:
    rr, cc = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return rr**2 + cc**2 <= radius**2


@pytest.mark.parametrize("napari_keeps_records", [True, False])
def test_painting_replaces_the_last_preview_only(napari_keeps_records, monkeypatch):
    layer = Labels(np.zeros((2, 60, 80), np.uint8))  # a stack of two planes
    painter = PreviewPainter(layer, info=None)
    if not napari_keeps_records:  # a napari without the private records: plain writes + full refresh
        monkeypatch.setattr(painter, "_undo_records", lambda: None)
    a, b = _disk(5), _disk(3)
    assert painter.paint(_prediction([(a, (10, 10)), (b, (40, 60))]), (1,)) == a.sum() + b.sum()
    assert (layer.data[1, 10:21, 10:21] == 1).sum() == a.sum() and (layer.data[1] == 2).sum() == b.sum()
    assert not layer.data[0].any()
    painter.paint(_prediction([(b, (30, 30))]), (1,))  # the next preview: the old one is gone
    assert set(np.unique(layer.data)) == {0, 1} and (layer.data[1, 30:37, 30:37] == 1).sum() == b.sum()
    assert (layer.data == 1).sum() == b.sum()
    painter.paint(_prediction([(np.zeros((4, 4), bool), (0, 0))]), (1,))  # an empty answer clears
    assert not layer.data.any()
    painter.paint(_prediction([(a, (5, 5))]), (0,))
    painter.clear()
    assert not layer.data.any()
    records = painter._undo_records()
    assert records is None or len(records) == 0  # nothing for Ctrl-Z to replay, nothing piling up


def test_large_planes_get_the_outline_drawn_from_the_crop():
    """napari's own contour is computed over the whole plane on every refresh (about 1 s on the main
    thread for 4096²): a plane over OWN_OUTLINE_PIXELS gets the outline painted from the mask's crop."""
    from napari_sam._napari._annotator_layers import OWN_OUTLINE_PIXELS, PREVIEW_CONTOUR

    side = int(np.sqrt(OWN_OUTLINE_PIXELS)) + 1
    layer = Labels(np.zeros((side, side), np.uint8))
    layer.contour = PREVIEW_CONTOUR
    painter = PreviewPainter(layer, info=None)
    assert painter.own_outline and layer.contour == 0
    disk = _disk(8)
    final = painter.paint(_prediction([(disk, (100, 200))]), ())
    shown = layer.data[100:117, 200:217] > 0
    assert shown[8, 0] and shown[8, 1] and not shown[8, 2] and not shown[8, 8]  # a 2-pixel rim, hollow
    assert final == shown.sum() < disk.sum()
    rough = painter.paint(_prediction([(disk, (100, 200))]), (), provisional=True)
    assert rough < final and layer.opacity < 1  # thinner and translucent while refining
    painter.clear()
    assert not layer.data.any()
