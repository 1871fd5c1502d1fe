"""Small things of the annotator in a real viewer (Xvfb, real keys, the real model): Shift-C says the
prompts and the preview are gone; error notifications are one short line and close by themselves; the
preview is a yellow outline, unlike the filled committed objects; docking fits the image into the
narrowed canvas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sam_napari_helpers import object_rect, pick_nucleus, ready_annotator, wait_preview

pytestmark = pytest.mark.gui

# screenshots go to tests/_artifacts/ (copied to docs/images/ by hand after looking at them)
SHOTS = Path(__file__).resolve().parents[1] / "_artifacts"


def _press(qtbot, viewer, key, modifier=None):
    from qtpy.QtCore import Qt

    canvas = viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    qtbot.keyClick(canvas, key, modifier or Qt.KeyboardModifier.NoModifier)


def _on_screen(viewer, row: float, col: float) -> tuple[float, float]:
    """Canvas pixel (x, y) of world (row, col) for a 2D view."""
    cam = viewer.camera
    h, w = viewer.window._qt_viewer.canvas.size
    return (col - cam.center[-1]) * cam.zoom + w / 2, (row - cam.center[-2]) * cam.zoom + h / 2


def _yellow(rgba: np.ndarray) -> np.ndarray:
    r, g, b = (rgba[..., i].astype(int) for i in range(3))
    return (r > 180) & (g > 150) & (b < 90) & (r - b > 120)


def test_preview_outline_and_shift_c(make_napari_viewer, qtbot, lite_medsam, nuclei_data):
    from qtpy.QtCore import Qt
    from scipy import ndimage as ndi

    from napari_sam._napari._annotator_layers import PREVIEW_CONTOUR

    image, truth = nuclei_data
    widget = ready_annotator(make_napari_viewer, qtbot, lite_medsam, image)
    viewer = widget.viewer
    viewer.window._qt_window.resize(1500, 800)
    first, target = pick_nucleus(truth), pick_nucleus(truth, skip=6)  # neighbours
    wait_preview(qtbot, widget, lambda: widget.shapes_layer.add_rectangles(object_rect(truth, first, 3)))
    assert widget.commit()  # one filled object beside the preview
    wait_preview(qtbot, widget, lambda: widget.shapes_layer.add_rectangles(object_rect(truth, target, 3)))
    assert widget.refined and widget.prediction is not None
    assert widget.preview_layer.contour == PREVIEW_CONTOUR and widget.objects_layer.contour == 0
    assert "in the preview (yellow outline)" in widget.status.text()

    # what is drawn: the preview's boundary is yellow, its inside is not (an outline, not a fill)
    rows, cols = np.nonzero(truth == target)
    viewer.camera.center = (rows.mean(), cols.mean())
    viewer.camera.zoom = 4.0
    widget.shapes_layer.visible = widget.points_layer.visible = False  # the box edge would hide the outline
    shot = viewer.screenshot(canvas_only=True, flash=False)
    widget.shapes_layer.visible = widget.points_layer.visible = True
    mask = widget.preview_layer.data > 0
    ring = mask & ~ndi.binary_erosion(mask, iterations=PREVIEW_CONTOUR)
    inside = ndi.binary_erosion(mask, iterations=PREVIEW_CONTOUR + 3)

    def yellow_share(region: np.ndarray) -> float:
        rr, cc = np.nonzero(region)
        x, y = _on_screen(viewer, rr, cc)
        keep = (x >= 0) & (y >= 0) & (x < shot.shape[1]) & (y < shot.shape[0])
        return float(_yellow(shot[y[keep].astype(int), x[keep].astype(int)]).mean())

    assert yellow_share(ring) > 0.5 and yellow_share(inside) < 0.05, (
        yellow_share(ring),
        yellow_share(inside),
    )

    # the screenshot for the docs: committed objects filled, the preview a yellow outline in its box
    both = np.argwhere((truth == first) | (truth == target))
    viewer.camera.center = tuple(both.mean(axis=0) - (0, 50))  # the image's edge is close on the right
    viewer.camera.zoom = 3.0
    qtbot.wait(100)
    SHOTS.mkdir(exist_ok=True)
    viewer.screenshot(str(SHOTS / "napari_preview_outline.png"), canvas_only=True, flash=False)

    # Shift-C (a real key press on the canvas) clears the prompts and the preview, and says so
    viewer.layers.selection.active = widget.points_layer
    _press(qtbot, viewer, "C", Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: not widget.previews.busy, timeout=10_000)
    qtbot.wait(200)  # any late answer of the cleared prompts would arrive now
    assert len(widget.shapes_layer.data) == 0 and len(widget.points_layer.data) == 0
    assert widget.prediction is None and not widget.preview_layer.data.any()
    status = widget.status.text()
    assert status.startswith("Prompts cleared") and "nothing in the preview" in status, status
    assert "object in the preview" not in status and "objects in the preview" not in status
    assert widget.objects_layer.data.max() == 1  # the committed object stays


def test_error_notifications_are_short_and_close(
    make_napari_viewer, qtbot, tmp_path, notifications, monkeypatch
):
    from qtpy.QtWidgets import QApplication

    from napari_sam._napari import _workers

    monkeypatch.setattr(_workers, "TOAST_SECONDS", 1.5)
    viewer = make_napari_viewer(show=True)
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam", "Batch labeling")
    missing = tmp_path / ("a_very_long_folder_name_" * 6) / ("and_an_image_whose_name_goes_on_" * 5 + ".tif")
    widget.add_files([str(missing)])
    widget.outdir.setText(str(tmp_path / "out"))
    widget.run_btn.click()  # refused: the file does not exist (a long message)

    full = widget.status.text()
    assert str(missing) in full and len(full) > 300  # the whole message stays in the dock
    qtbot.waitUntil(lambda: any("do not exist" in m for m in notifications), timeout=5000)
    shown = next(m for m in notifications if "do not exist" in m).removeprefix("WARNING: ")  # a user error
    assert len(shown) <= _workers.NOTIFICATION_CHARS and "\n" not in shown, shown
    assert shown.endswith("… (details in the dock)"), shown

    def toasts() -> list:
        return [
            w
            for w in QApplication.allWidgets()
            if type(w).__name__ == "NapariQtNotification" and w.isVisible() and w.message.text() == shown
        ]

    qtbot.waitUntil(lambda: len(toasts()) == 1, timeout=5000)
    qtbot.waitUntil(lambda: not toasts(), timeout=6000)  # gone after TOAST_SECONDS (and the fade)


def test_docking_fits_the_image_into_the_canvas(make_napari_viewer, qtbot, artifacts_dir):
    image = np.random.default_rng(0).integers(0, 255, (300, 1000), dtype=np.uint8)
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1000, 700)
    qtbot.wait(100)
    viewer.add_image(image, name="wide")
    viewer.reset_view()
    width_before = viewer.window._qt_viewer.canvas.size[1]
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam", "Annotator")

    def fits() -> bool:
        x0, _ = _on_screen(viewer, 0, -0.5)
        x1, _ = _on_screen(viewer, 0, image.shape[1] - 0.5)
        return x0 >= -1 and x1 <= viewer.window._qt_viewer.canvas.size[1] + 1

    qtbot.waitUntil(lambda: widget._fit_when_docked.done, timeout=5000)
    assert viewer.window._qt_viewer.canvas.size[1] < width_before  # the dock took room from the canvas
    qtbot.waitUntil(fits, timeout=5000)  # the right edge is on screen again
    viewer.screenshot(str(artifacts_dir / "docked_view.png"), canvas_only=False, flash=False)
