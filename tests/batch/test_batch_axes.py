"""Batch inputs' axes: a multichannel TIFF (ImageJ's CYX, OME's ZCYX) is one image per plane with channels,
not a stack of channels; --axes names the axes of files that do not; --channel segments one channel."""

import json

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from napari_sam.automatic import match_scores
from napari_sam.batch.axes import standard_view
from napari_sam.batch.run import BatchConfig, plan, run_batch
from napari_sam.io.images import image_axes
from napari_sam.io.labels import read_labels


def test_the_standard_view_moves_planes_first_and_channels_last():
    data = np.arange(2 * 3 * 20 * 24).reshape(2, 3, 20, 24)  # (Z, C, Y, X)
    view, stack, channel_axis = standard_view(data, "ZCYX")
    assert view.shape == (2, 20, 24, 3) and stack and channel_axis == 2
    assert np.array_equal(view[1, :, :, 2], data[1, 2])
    view, stack, channel_axis = standard_view(data, "ZCYX", channel=1)
    assert view.shape == (2, 20, 24) and stack and channel_axis is None
    assert np.array_equal(view[0], data[0, 1])
    # axes of length 1 are dropped: one time point, one channel of an ImageJ hyperstack
    view, stack, channel_axis = standard_view(data[None, :, :1], "TZCYX", channel=0)
    assert view.shape == (2, 20, 24) and stack and channel_axis is None
    # without axes the shape decides, as before
    assert standard_view(data[0], None)[1:] == (True, None)
    assert standard_view(np.zeros((20, 24, 3)), None, channel=2)[0].shape == (20, 24)


@pytest.mark.parametrize(
    ("shape", "axes", "channel", "message"),
    [
        ((2, 3, 20, 24), "TZYX", None, "2 plane axes"),
        ((2, 20, 24), "ZCYX", None, "name 4 axes but the image has 3"),
        ((2, 20, 24), "CYX", 2, r"channel 2 does not exist: the image has 2 channels \(0 to 1\)"),
        ((2, 20, 24), "ZYX", 0, "no channel axis: name it with --axes"),
        ((2, 20, 24), None, 0, "no channel axis that its file names"),
        ((2, 20, 24), "CYY", None, "Y and X once each"),
    ],
)
def test_axes_that_do_not_fit_are_refused_with_the_fix(shape, axes, channel, message):
    with pytest.raises(ValueError, match=message):
        standard_view(np.zeros(shape), axes, channel)


@pytest.fixture
def two_channel(tmp_path, nuclei_data):
    """A (C, Y, X) ImageJ TIFF: nuclei in channel 0, a ring of cytoplasm around them in channel 1."""
    img, truth = nuclei_data
    img, truth = img[:192, :192].astype(np.float32), truth[:192, :192]
    ring = (ndi.grey_dilation(img, size=9) - img) * 0.5
    path = tmp_path / "in" / "cells.tif"
    path.parent.mkdir()
    tifffile.imwrite(path, np.stack([img, ring]).astype(np.uint16), imagej=True, metadata={"axes": "CYX"})
    plain = tmp_path / "plain" / "cells.tif"
    plain.parent.mkdir()
    tifffile.imwrite(plain, np.stack([img, ring]).astype(np.uint16))  # no axes: read as 2 planes
    return path, plain, truth


def test_a_channel_tiff_is_one_image_not_a_stack(two_channel, tmp_path):
    path, plain, _ = two_channel
    assert image_axes(path) == "CYX"
    assert image_axes(plain) is None  # tifffile's "QYX": axes it could not name leave it to the shape
    (job,) = plan([path], BatchConfig(tmp_path / "o1"))
    assert job.error is None and not job.stack and job.planes == 1 and job.channel_axis == 2
    (job,) = plan([plain], BatchConfig(tmp_path / "o2"))
    assert job.stack and job.planes == 2  # what the shape alone says
    (job,) = plan([plain], BatchConfig(tmp_path / "o3", axes="cyx"))
    assert not job.stack and job.channel_axis == 2 and job.axes == "CYX"


@pytest.mark.slow
def test_label_one_channel_of_a_channel_tiff(two_channel, tmp_path, lite_medsam):
    path, _, truth = two_channel
    report = run_batch([path], BatchConfig(tmp_path / "out", device="cpu", channel=0), progress=False)
    assert report.ok, report.failed
    labels = read_labels(tmp_path / "out" / "cells_labels.tif")
    assert labels.shape == truth.shape  # 2D labels, not a 2-plane stack
    assert match_scores(labels, truth)["f1"] >= 0.8  # the nuclei channel alone: 0.85 on a 256² crop
    summary = json.loads((tmp_path / "out" / "cells.labels.json").read_text())
    assert summary["axes"] == "CYX" and summary["channel"] == 0 and summary["planes"] == 1
