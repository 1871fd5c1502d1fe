"""Any image in: dtypes, NaN/inf, channels, the recorded scaling, and the refusals."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from napari_sam.image.normalize import IntensityScaling, prepare_image

RNG = np.random.default_rng(0)


def _gray(dtype, lo=0, hi=1000):
    img = RNG.uniform(lo, hi, size=(64, 80))
    return img.astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64])
def test_gray_dtypes_scale_to_0_255(dtype):
    hi = 200 if dtype == np.uint8 else 1000
    prep = prepare_image(_gray(dtype, hi=hi))
    block = prep.region(0, 64, 0, 80)
    assert block.shape == (64, 80, 3) and block.dtype == np.float32
    assert block.min() >= 0 and block.max() <= 255 and block.max() > 250
    np.testing.assert_array_equal(block[..., 0], block[..., 2])  # gray repeated


def test_negative_and_float_ranges():
    img = _gray(np.float32, lo=-5.0, hi=-1.0)
    block = prepare_image(img).region(0, 64, 0, 80)
    assert block.max() > 250 and block.min() < 5


def test_nan_and_inf_are_handled_and_ignored_by_the_scaling():
    img = _gray(np.float32)
    img[:5] = np.nan
    img[10, 10] = np.inf
    img[11, 11] = -np.inf
    prep = prepare_image(img)
    assert np.isfinite(prep.scaling.low).all() and np.isfinite(prep.scaling.high).all()
    block = prep.region(0, 64, 0, 80)
    assert np.isfinite(block).all()
    assert block[0, 0, 0] == 0 and block[10, 10, 0] == 255 and block[11, 11, 0] == 0


def test_rgb_uint8_is_used_as_is():
    rgb = RNG.integers(0, 256, size=(32, 40, 3), dtype=np.uint8)
    prep = prepare_image(rgb)
    assert prep.scaling.method == "identity"
    np.testing.assert_array_equal(prep.region(0, 32, 0, 40), rgb.astype(np.float32))


def test_rgba_drops_alpha():
    rgba = RNG.integers(0, 256, size=(32, 40, 4), dtype=np.uint8)
    rgba[..., 3] = 7
    np.testing.assert_array_equal(prepare_image(rgba).region(0, 32, 0, 40), rgba[..., :3].astype(np.float32))


def test_multichannel_with_channel_axis_first():
    img = RNG.uniform(0, 100, size=(5, 32, 40)).astype(np.float32)
    prep = prepare_image(img, channel_axis=0)
    assert prep.shape == (32, 40)
    assert prep.layout.channels == (0, 1, 2)
    block = prep.region(0, 32, 0, 40)
    # channel 1 of the input is the green channel of the model input, scaled on its own
    corr = np.corrcoef(block[..., 1].ravel(), img[1].ravel())[0, 1]
    assert corr > 0.99


def test_two_channels_become_red_and_green():
    img = RNG.uniform(0, 100, size=(32, 40, 2)).astype(np.float32)
    block = prepare_image(img, channel_axis=-1).region(0, 32, 0, 40)
    assert block[..., 2].max() == 0 and block[..., 0].max() > 0 and block[..., 1].max() > 0


def test_dask_input_gives_the_same_pixels_as_numpy():
    img = _gray(np.uint16)
    a = prepare_image(img)
    b = prepare_image(da.from_array(img, chunks=(16, 16)))
    assert a.scaling == b.scaling
    np.testing.assert_array_equal(a.region(5, 40, 7, 50), b.region(5, 40, 7, 50))


def test_recorded_scaling_is_reused():
    img = _gray(np.uint16)
    scaling = IntensityScaling((0.0,), (2000.0,))
    prep = prepare_image(img, scaling=scaling)
    assert prep.scaling is scaling
    np.testing.assert_allclose(prep.region(0, 1, 0, 1)[0, 0, 0], img[0, 0] / 2000 * 255, rtol=1e-5)


def test_percentile_scaling_is_robust_to_hot_pixels():
    img = np.full((100, 100), 100, dtype=np.uint16)
    img[:50] = 200
    img[0, 0] = 65535  # one hot pixel must not squash the contrast
    block = prepare_image(img).region(0, 100, 0, 100)
    assert block[60, 0, 0] < 5 and block[10, 0, 0] > 250


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((0, 10)), "empty"),
        (np.full((16, 16), 7, dtype=np.uint16), "constant"),
        (np.full((16, 16), np.nan, dtype=np.float32), "no finite values"),
        (np.zeros((4, 16, 16)) + np.arange(16), "channel_axis"),
        (np.zeros((2, 3, 16, 16)), r"expected a 2D image.*pass stack_axis=0 \(the plane axis\)"),
        (np.zeros(16), "expected a 2D image"),
        (np.array([["a", "b"]]), "expected integers, floats"),
    ],
)
def test_bad_input_raises_a_helpful_value_error(bad, message):
    with pytest.raises(ValueError, match=message):
        prepare_image(bad)


def test_channel_axis_on_a_2d_image_is_refused():
    with pytest.raises(ValueError, match="channel_axis=0 needs a 3D"):
        prepare_image(np.ones((8, 8)), channel_axis=0)
