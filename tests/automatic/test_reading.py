"""Reading an image before proposing: polarity and stains, object size, background and flat field."""

import numpy as np
import pytest

from napari_sam.automatic.background import flatten
from napari_sam.automatic.box_mode import BoxModeParams
from napari_sam.automatic.polarity import bright_objects, decide_polarity, is_stained_brightfield
from napari_sam.automatic.proposals import propose_boxes
from napari_sam.automatic.scale import estimate_diameter
from napari_sam.io.sample_variants import he_rendering, inverted
from napari_sam.io.samples import blobs, nuclei

RNG = np.random.default_rng(3)
CENTRES = [(r, c) for r in range(24, 200, 44) for c in range(24, 200, 44)]


def field(radius: float, noise: float = 30.0):
    jitter = RNG.integers(-4, 5, size=(len(CENTRES), 2))
    radii = np.full(len(CENTRES), float(radius))
    return blobs((224, 224), np.array(CENTRES) + jitter, radii, noise=noise, seed=1)


def test_polarity_follows_the_objects_not_the_channel():
    img, truth = field(9)
    assert decide_polarity(img.astype(np.float32))[0] == "bright"
    assert decide_polarity(inverted(img).astype(np.float32))[0] == "dark"
    bright, reading = bright_objects(inverted(img).astype(np.float32))
    assert reading["polarity"] == "dark"
    # the returned image has the objects bright again
    assert bright[truth > 0].mean() > bright[truth == 0].mean()


def test_dark_objects_are_proposed_like_bright_ones():
    """Turned over into non-negative values, dark objects get every proposal generator, including the
    intensity watershed, whose seeds are maxima above zero (a negated image once gave it none: on the
    inverted nuclei 299 boxes instead of 322, F1 0.761 instead of 0.803)."""
    img = nuclei()[0].astype(np.float32)
    display = (img - img.min()) * (255.0 / np.ptp(img))
    as_bright, _ = bright_objects(display, "bright")
    as_dark, reading = bright_objects(255.0 - display)
    assert reading["polarity"] == "dark" and as_dark.min() >= 0.0
    a = propose_boxes(as_bright, sigma=1.0, diameter=20.0)
    b = propose_boxes(as_dark, sigma=1.0, diameter=20.0)
    assert sum(str(s).startswith("intensity") for s in b.source) > 10
    np.testing.assert_allclose(a.boxes, b.boxes)


def test_stained_rgb_is_read_through_haematoxylin():
    img, truth = field(9)
    rgb = he_rendering(img, truth)
    bright, reading = bright_objects(rgb)
    assert reading == {"channel": "haematoxylin", "polarity": "dark"}
    assert bright[truth > 0].mean() > bright[truth == 0].mean() + 0.02
    # told otherwise, it reads the channels' mean as bright objects
    assert bright_objects(rgb, "bright")[1]["channel"] == "gray"
    with pytest.raises(ValueError, match="polarity must be"):
        bright_objects(rgb, "darker")


def test_every_crop_of_a_real_ihc_section_is_read_as_stained():
    """scikit-image's IHC section (DAB and haematoxylin): each 128² crop is stained brightfield, also the
    dense ones with no background in view and the pale ones with a few nuclei; images with pixels dark in
    every channel (a fluorescence composite, a fundus photograph) are not."""
    from skimage import data

    ihc = data.immunohistochemistry()
    crops = [ihc[r : r + 128, c : c + 128] for r in range(0, 512, 128) for c in range(0, 512, 192)]
    assert all(is_stained_brightfield(crop) for crop in crops)
    dense = crops[0]  # the epithelium: brown throughout
    assert bright_objects(dense)[1]["channel"] == "haematoxylin"
    img, _ = field(9)
    g = img.astype(np.float32) / img.max() * 255
    composite = np.dstack([np.zeros_like(g), 0.4 * g, g]).astype(np.uint8)
    assert not is_stained_brightfield(composite)
    assert not is_stained_brightfield(data.retina())


@pytest.mark.parametrize("radius", [3, 6, 12])
def test_diameter_from_scale_space_blobs(radius):
    img, _ = field(radius)
    d = estimate_diameter(img.astype(np.float32))
    assert 1.5 * radius <= d <= 2.6 * radius


def test_a_size_hint_picks_the_objects_among_two_sizes():
    """Small and large blobs in one image: a hint near either size returns that size; a hint where there
    is nothing (or an image without blobs) returns the hint itself."""
    small, _ = field(3)
    large, _ = field(12)
    both = np.concatenate([small, large], axis=1).astype(np.float32)
    assert 4.5 <= estimate_diameter(both, near=6.0) <= 8.0
    assert 18.0 <= estimate_diameter(both, near=24.0) <= 31.0
    assert estimate_diameter(small.astype(np.float32), near=60.0) == 60.0
    assert estimate_diameter(np.full((64, 64), 7.0), near=10.0) == 10.0
    with pytest.raises(ValueError, match="size_hint must be positive"):
        BoxModeParams(size_hint=0)


def test_no_blobs_in_noise_or_constant_images():
    assert estimate_diameter(RNG.normal(100, 10, (128, 128))) == 0.0
    assert estimate_diameter(np.full((64, 64), 7.0)) == 0.0


def test_flat_field_evens_out_illumination():
    img, truth = field(9)
    x = img.astype(np.float32) - 200.0
    gain = np.linspace(0.3, 1.0, x.shape[1])[None, :]
    uneven = x * gain + 500.0 * np.linspace(0, 1, x.shape[0])[:, None]
    flat = flatten(uneven, 18.0)
    left, right = truth[:, :80] > 0, truth[:, -80:] > 0
    raw_ratio = uneven[:, -80:][right].mean() / uneven[:, :80][left].mean()
    flat_ratio = flat[:, -80:][right].mean() / flat[:, :80][left].mean()
    assert flat_ratio < 1.6 < raw_ratio or flat_ratio < 0.6 * raw_ratio
    # the background is near 0 everywhere, the objects near 1
    assert abs(np.median(flat[truth == 0])) < 0.15 and np.median(flat[truth > 0]) > 0.4


def test_settings_are_checked():
    with pytest.raises(ValueError, match="pred_iou_thresh must lie in"):
        BoxModeParams(pred_iou_thresh=1.5)
    with pytest.raises(ValueError, match="polarity"):
        BoxModeParams(polarity="up")
    with pytest.raises(ValueError, match="diameter must be positive"):
        BoxModeParams(diameter=-3)
    with pytest.raises(ValueError, match="upscale_allowance must lie in"):
        BoxModeParams(upscale_allowance=-0.1)
    with pytest.raises(ValueError, match="flatten must be"):
        BoxModeParams(flatten="yes")


def test_flattening_is_decided_per_image_from_the_blobs_a_threshold_leaves_out():
    from napari_sam.automatic.box_mode import propose
    from napari_sam.image.normalize import prepare_image
    from napari_sam.io.sample_variants import variant

    img, truth = nuclei()
    readings = {}
    for name in ("original", "uneven"):
        image, _ = variant(name, img, truth)
        readings[name] = propose(prepare_image(image), BoxModeParams()).reading
    assert readings["original"]["flattened"] is False and readings["original"]["blobs_missed"] < 0.1
    # under a ×0.3–×1 field the global threshold leaves out the dim corner's nuclei
    uneven = readings["uneven"]
    assert uneven["flattened"] is True and uneven["blobs_missed"] > 0.2
    assert uneven["blobs_missed_flat"] < uneven["blobs_missed"]
    # the size is read again on the flattened image: as on the evenly lit one (32 px without)
    assert uneven["object_diameter"] == pytest.approx(readings["original"]["object_diameter"], rel=0.1)
    # told, it does as told
    image, _ = variant("uneven", img, truth)
    assert propose(prepare_image(image), BoxModeParams(flatten=False)).reading["flattened"] is False


def test_blob_boxes_frame_each_object_bright_or_dim_and_not_the_noise():
    from napari_sam.automatic.scale import blob_boxes

    img, truth = field(8, noise=40.0)
    x = img.astype(np.float32)
    # dim half: the objects on the left keep 40 % of their contrast
    background = float(np.median(x))
    x[:, :100] = background + 0.4 * (x[:, :100] - background)
    boxes = blob_boxes(x, 16.0, pad=1.0)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    found = 0
    ids = [i for i in np.unique(truth) if i]
    for i in ids:
        rr, cc = np.nonzero(truth == i)
        hit = (np.abs(centres[:, 0] - rr.mean()) <= 3) & (np.abs(centres[:, 1] - cc.mean()) <= 3)
        sides = boxes[hit, 2] - boxes[hit, 0] + 1
        found += bool(hit.any() and ((sides >= 12) & (sides <= 26)).any())
    assert found >= 0.9 * len(ids)
    assert len(boxes) <= 1.3 * len(ids)  # not the noise
    assert blob_boxes(RNG.normal(100, 10, (128, 128)), 16.0).shape == (0, 4)


def test_small_objects_get_a_rim_allowance_on_stability():
    from napari_sam.automatic.box_mode import stability_threshold

    params = BoxModeParams()
    assert stability_threshold(params, 25.0) == params.stability_thresh == 0.7  # nuclei of 25 px
    assert stability_threshold(params, 16.0) == pytest.approx(1 - 2 * 1.5 / 8.0)  # 1 − 2δ/r = 0.625
    assert stability_threshold(params, 12.7) == stability_threshold(params, 4.0) == 0.6  # the floor
    assert stability_threshold(BoxModeParams(rim_allowance=0), 4.0) == 0.7
    assert stability_threshold(BoxModeParams(stability_thresh=0.5), 12.7) == 0.5
    with pytest.raises(ValueError, match="rim_allowance"):
        BoxModeParams(rim_allowance=-1)
