"""The segment-everything and batch widgets drive the real core (automatic mode, ``napari-sam label``)."""

from __future__ import annotations

import numpy as np
import pytest
from sam_napari_helpers import ENCODE_TIMEOUT_MS

from napari_sam._napari._batch import cli_label_available

pytestmark = pytest.mark.gui


def _blobs(side=256):
    from napari_sam.io.samples import blobs

    centres = [(60, 60), (60, 180), (180, 70), (190, 190), (125, 125)]
    return blobs((side, side), centres, [14, 18, 12, 16, 15], seed=3)


def test_segment_everything_on_the_shown_plane(make_napari_viewer, qtbot, lite_medsam):
    image, truth = _blobs()
    viewer = make_napari_viewer()
    viewer.add_image(np.stack([image, image]), name="blobs", scale=(3.0, 1.0, 1.0))
    viewer.dims.set_point(0, 3.0)  # plane 1
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam", "Segment everything")
    widget.device_combo.setCurrentText("cpu")
    widget._models[("lite_medsam", "cpu")] = lite_medsam
    with qtbot.waitSignal(widget.run().finished, timeout=2 * ENCODE_TIMEOUT_MS):
        pass
    layer = viewer.layers["blobs SAM everything"]
    assert layer.data.shape == (2, 256, 256) and not layer.data[0].any()
    found = layer.data[1]
    hits = [len(set(np.unique(found[truth == i])) - {0}) for i in range(1, 6)]
    assert sum(h >= 1 for h in hits) >= 4, hits  # (nearly) every blob is found
    assert np.allclose(layer.scale, (3.0, 1.0, 1.0))


@pytest.mark.skipif(not cli_label_available(), reason="the napari-sam label command is not in this build")
def test_batch_widget_runs_the_command_line_job(make_napari_viewer, qtbot, tmp_path):
    import tifffile

    image, _ = _blobs()
    src = tmp_path / "in"
    src.mkdir()
    tifffile.imwrite(src / "a.tif", image)  # one file: each is a process that loads torch and the model
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam", "Batch labeling")
    widget.add_files([str(src / "a.tif")])
    widget.outdir.setText(str(tmp_path / "out"))
    widget.device_combo.setCurrentText("cpu")
    with qtbot.waitSignal(widget.run().finished, timeout=4 * ENCODE_TIMEOUT_MS):
        pass
    assert len([w for w in widget.written if w.endswith((".tif", ".tiff"))]) == 1, widget.written
    opened = [layer for layer in viewer.layers if layer.__class__.__name__ == "Labels"]
    assert len(opened) == 1 and opened[0].data.max() >= 3
    assert "Labeled 1 file(s)" in widget.status.text()
