"""Per-plane input checks (issue 14): a blank plane in a stack is refused like a blank image, tiny
images get one answer everywhere, very elongated images are warned about before any encoding.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_sam.image.normalize import BlankImageError
from napari_sam.image.planes import make_source
from napari_sam.io.samples import blobs


def _stack_with(blank):
    image = blobs((64, 64), [(30, 30)], [10], seed=1)[0].astype(np.float32)
    return np.stack([image, blank, image])


@pytest.mark.parametrize(
    ("blank", "match"),
    [
        (np.full((64, 64), np.nan, np.float32), "plane 1 of the stack has no finite values"),
        (np.full((64, 64), 7.0, np.float32), "plane 1 of the stack is constant"),
    ],
)
def test_a_blank_plane_is_refused_like_a_blank_image(blank, match):
    source = make_source(_stack_with(blank), stack_axis=0)  # the stack itself is fine
    source.check_content(0)
    with pytest.raises(BlankImageError, match=match):
        source.check_content(1)
    with pytest.raises(ValueError, match="no finite values|constant"):
        make_source(blank)  # the same plane as an image of its own


@pytest.mark.slow
def test_predict_and_segment_everything_on_a_blank_plane_raise(lite_medsam):
    """Before: predict(plane=1) on an all-NaN plane answered with a confident mask."""
    from napari_sam.automatic.everything import segment_everything
    from napari_sam.segmenter import Segmenter

    stack = _stack_with(np.full((64, 64), np.nan, np.float32))
    seg = Segmenter(lite_medsam)
    seg.set_image(stack, stack_axis=0, encode=False)
    with pytest.raises(ValueError, match="plane 1 of the stack has no finite values"):
        seg.predict(box=(20, 20, 40, 40), plane=1)
    with pytest.raises(ValueError, match="plane 1 of the stack has no finite values"):
        segment_everything(stack, model=lite_medsam, stack_axis=0, plane=1)


def test_tiny_images_are_refused_with_their_size():
    tiny = np.array([[0, 10, 0], [10, 50, 10], [0, 10, 0]], np.uint8)
    with pytest.raises(ValueError, match="the image is 3 × 3 pixels: too small to segment"):
        make_source(tiny)
    with pytest.raises(ValueError, match="3 × 3 pixels: too small"):
        make_source(np.stack([tiny, tiny]), stack_axis=0)


def test_a_very_elongated_image_is_warned_about_before_encoding():
    line = np.tile(np.arange(16, dtype=np.uint8), (100_000, 1))  # (100000, 16)
    with pytest.warns(UserWarning, match=r"100000 × 16 pixels \(6250 times longer than wide\)"):
        make_source(line)


@pytest.mark.parametrize(
    "shape, stack_axis, channel_axis",
    [((40, 50), None, None), ((40, 50, 3), None, -1), ((4, 40, 50), 0, None), ((40, 3, 50, 4), 3, 1)],
)
def test_a_source_made_again_from_its_arguments_is_the_same(shape, stack_axis, channel_axis):
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    src = make_source(image, stack_axis=stack_axis, channel_axis=channel_axis)
    data, arguments = src.arguments()
    again = make_source(data, **arguments)
    assert again.is_stack == src.is_stack and again.num_planes == src.num_planes
    assert again.scaling == src.scaling
    for p in range(src.num_planes):
        assert np.array_equal(np.asarray(again.plane(p).data), np.asarray(src.plane(p).data))
