"""The segment-everything widget's settings (sizes, thresholds, polarity, examples): shown with the
core's defaults, refused with one clear message when absurd, and an image without objects says so
(real napari, real LiteMedSAM, real button clicks).
"""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt
from sam_napari_helpers import ENCODE_TIMEOUT_MS

from napari_sam.automatic.box_mode import BoxModeParams
from napari_sam.automatic.point_grid import PointGridParams

pytestmark = pytest.mark.gui


def _widget(make_napari_viewer, model, image, name="img"):
    viewer = make_napari_viewer()
    viewer.add_image(image, name=name)
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam", "Segment everything")
    widget.device_combo.setCurrentText("cpu")
    widget._models[("lite_medsam", "cpu")] = model
    return viewer, widget


def _click_run(qtbot, widget) -> None:
    qtbot.mouseClick(widget.run_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget._worker is None and widget.run_btn.isEnabled(), timeout=ENCODE_TIMEOUT_MS)


def test_settings_show_the_defaults_and_follow_the_mode(make_napari_viewer, lite_medsam):
    _, widget = _widget(make_napari_viewer, lite_medsam, np.zeros((64, 64), np.uint8))
    box, grid = BoxModeParams(), PointGridParams()
    assert widget.mode_kind() == "boxes"  # LiteMedSAM's own mode
    assert (
        widget.iou_spin.value() == box.pred_iou_thresh
        and widget.stability_spin.value() == box.stability_thresh
    )
    assert widget.smallest_spin.text() == "auto" and widget.largest_spin.text() == "auto"
    assert widget.examples_combo.currentText() == "none" and widget.examples_combo.layer() is None
    assert all(w.toolTip() for w in (widget.iou_spin, widget.smallest_spin, widget.examples_combo))
    assert widget.settings() == {}  # nothing set: every default is the core's

    widget.mode_combo.setCurrentText("points")  # box-only settings off, thresholds show the grid's defaults
    assert not widget.smallest_spin.isEnabled() and not widget.examples_combo.isEnabled()
    assert not widget.polarity_combo.isEnabled() and widget.iou_spin.isEnabled()
    assert (
        widget.iou_spin.value() == grid.pred_iou_thresh
        and widget.stability_spin.value() == grid.stability_thresh
    )
    widget.iou_spin.setValue(0.5)
    widget.mode_combo.setCurrentText("boxes")  # a threshold the user set stays
    assert widget.smallest_spin.isEnabled() and widget.iou_spin.value() == 0.5
    assert widget.stability_spin.value() == box.stability_thresh
    widget.smallest_spin.setValue(10)
    widget.polarity_combo.setCurrentText("bright")
    assert widget.settings() == {"pred_iou_thresh": 0.5, "min_area": 79, "polarity": "bright"}
    assert widget.background_combo.isEnabled() and widget.background_combo.currentText() == "auto"
    widget.background_combo.setCurrentText("as is")
    assert widget.settings()["flatten"] is False
    assert widget.noise_combo.isEnabled() and widget.noise_combo.currentText() == "auto"
    assert "denoise" not in widget.settings() and widget.noise_combo.toolTip()
    widget.noise_combo.setCurrentText("denoise")
    assert widget.settings()["denoise"] is True


def test_absurd_sizes_get_one_clear_message(make_napari_viewer, qtbot, lite_medsam, notifications):
    viewer, widget = _widget(make_napari_viewer, lite_medsam, np.zeros((64, 64), np.uint8))
    widget.smallest_spin.setValue(40)
    widget.largest_spin.setValue(20)
    qtbot.mouseClick(widget.run_btn, Qt.MouseButton.LeftButton)
    text = widget.status.text()
    assert "the smallest object (40 px across) is larger than the largest (20 px)" in text, text
    assert widget._worker is None and widget.run_btn.isEnabled()  # nothing started
    assert "img SAM everything" not in viewer.layers
    assert any("smallest object" in m for m in notifications)


@pytest.mark.parametrize(
    ("kind", "reason"), [("constant", "constant image ("), ("noise", "no blob stands out of the noise (")]
)
def test_an_image_without_objects_says_no_objects_found(make_napari_viewer, qtbot, lite_medsam, kind, reason):
    rng = np.random.default_rng(0)
    image = np.full((96, 96), 300, np.uint16) if kind == "constant" else rng.normal(1000, 50, (96, 96))
    viewer, widget = _widget(make_napari_viewer, lite_medsam, image.astype(np.uint16))
    _click_run(qtbot, widget)
    assert widget.status.text().startswith(f"no objects found: {reason}"), widget.status.text()
    assert not viewer.layers["img SAM everything"].data.any()  # empty labels, not noise objects
    assert reason[:-2] in widget.result_info["empty"]


def test_examples_from_a_labels_layer_are_kept_and_checked(
    make_napari_viewer, qtbot, lite_medsam, nuclei_data
):
    image, truth = nuclei_data[0][176:336, 176:336], nuclei_data[1][176:336, 176:336]
    viewer, widget = _widget(make_napari_viewer, lite_medsam, image, name="nuclei")
    ids, areas = np.unique(truth[truth > 0], return_counts=True)
    chosen = [i for i, _ in sorted(zip(ids, areas), key=lambda t: -t[1])[:3]]
    examples = np.where(np.isin(truth, chosen), truth, 0).astype(np.int32)
    viewer.add_labels(np.zeros((50, 50), np.int32), name="wrong shape")
    widget.examples_combo.setCurrentText("wrong shape")
    qtbot.mouseClick(widget.run_btn, Qt.MouseButton.LeftButton)
    assert "image's shape (160, 160)" in widget.status.text() and "(50, 50)" in widget.status.text()
    assert widget._worker is None

    viewer.add_labels(examples, name="typical")
    widget.examples_combo.setCurrentText("typical")
    _click_run(qtbot, widget)
    result = np.asarray(viewer.layers["nuclei SAM everything"].data)
    assert np.array_equal(result[examples > 0], examples[examples > 0])  # kept under their own labels
    count = len(np.unique(result)) - 1
    assert count >= 6, widget.status.text()
    assert widget.status.text().startswith(f"{count} objects (3 of them the examples)")
    assert "; read as bright objects on their surroundings, about " in widget.status.text()
