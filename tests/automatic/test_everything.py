"""segment_everything / segment_stack with the real default model (LiteMedSAM) on real and made images."""

import numpy as np
import pytest

from napari_sam.automatic import match_scores, segment_everything, segment_stack
from napari_sam.io.samples import blobs

CENTRES = [(30, 30), (34, 90), (90, 40), (95, 98)]


@pytest.fixture(scope="module")
def blob_image():
    return blobs((128, 128), CENTRES, [11, 12, 10, 12])


def test_boxes_mode_is_the_default_for_lite_medsam_and_finds_every_blob(lite_medsam, blob_image):
    img, truth = blob_image
    labels, info = segment_everything(img, model=lite_medsam, return_info=True)
    assert info["mode"] == "boxes" and labels.shape == img.shape and labels.dtype == np.int32
    s = match_scores(labels, truth)
    assert s["f1"] == 1.0 and s["mean_matched_iou"] > 0.75
    assert info["encoded_windows"] <= info["windows"] <= 4


def test_tiles_join_objects_across_seams(lite_medsam, blob_image):
    img, truth = blob_image
    # tiles of 80 px overlapping by 48: the blobs at column ~90 cross a seam
    labels, info = segment_everything(img, model=lite_medsam, tile_size=80, tile_overlap=48, return_info=True)
    assert info["tiles"] == 9
    assert match_scores(labels, truth)["f1"] == 1.0
    # counts add up over the tiles; a reading (the zoom, the stability threshold) is one tile's, not a sum
    assert info["zoom_factor"] in (7.0, 10.0)
    assert info["stability_applied"] <= info["stability_set"] <= 1.0
    assert info["decoded"] >= info["windows"] >= info["tiles"] - 1
    assert info["polarity"] == "bright"


def test_an_empty_first_tile_does_not_make_the_image_empty(lite_medsam):
    from napari_sam.io.samples import blobs

    img, truth = blobs((160, 160), [(120, 118), (125, 75)], [12, 10], seed=1)  # none in the top-left tile
    labels, info = segment_everything(img, model=lite_medsam, tile_size=80, tile_overlap=16, return_info=True)
    assert info["tiles"] >= 4 and info["objects"] >= 1
    assert "empty" not in info  # a tile's reason for its own empty result is not the image's


def test_points_mode_runs_and_filters(lite_medsam, blob_image):
    img, _ = blob_image
    # LiteMedSAM scores point prompts low: the default 0.88 filter leaves nothing (as the official generator)
    labels, info = segment_everything(
        img, model=lite_medsam, mode="points", params={"points_per_side": 4}, return_info=True
    )
    assert info["mode"] == "points" and info["decoded"] == 16 * 3
    assert labels.max() == 0
    with pytest.raises(ValueError, match="mode must be"):
        segment_everything(img, model=lite_medsam, mode="grid")
    with pytest.raises(ValueError, match="unknown parameter"):
        segment_everything(img, model=lite_medsam, mode="points", params={"points": 3})


def test_stack_planes_are_linked(lite_medsam):
    stack = np.stack([blobs((96, 96), [(30, 30 + 2 * z), (64, 64)], [10, 12], seed=z)[0] for z in range(2)])
    linked = segment_stack(stack, model=lite_medsam)
    assert linked.shape == (2, 96, 96)
    assert set(np.unique(linked[0])) == set(np.unique(linked[1])) == {0, 1, 2}
    with pytest.raises(ValueError, match="plane=INDEX"):
        segment_everything(stack, model=lite_medsam, stack_axis=0)


@pytest.mark.slow
def test_nuclei_f1_target(nuclei_everything, nuclei_data):
    labels, info = nuclei_everything
    truth = nuclei_data[1]
    assert match_scores(labels, truth)["f1"] >= 0.85
    assert info["zoom_factor"] == 7.0  # sharp nuclei: the model scores the closer view higher


def test_dark_objects_on_a_bright_background(lite_medsam, blob_image):
    from napari_sam.io.sample_variants import inverted

    img, truth = blob_image
    labels, info = segment_everything(inverted(img), model=lite_medsam, return_info=True)
    assert info["polarity"] == "dark"
    assert match_scores(labels, truth)["f1"] == 1.0
    # told the objects are bright, it looks for the gaps instead and does not find the blobs
    wrong = segment_everything(inverted(img), model=lite_medsam, params={"polarity": "bright"})
    assert match_scores(wrong, truth)["f1"] < 0.5


def test_images_without_objects_give_empty_labels_and_say_so(lite_medsam):
    labels, info = segment_everything(np.full((64, 64), 9, np.uint16), model=lite_medsam, return_info=True)
    assert labels.shape == (64, 64) and not labels.any() and "constant" in info["empty"]
    noise = np.random.default_rng(0).normal(500, 40, (96, 96)).astype(np.float32)
    labels, info = segment_everything(noise, model=lite_medsam, return_info=True)
    assert not labels.any() and "no objects" in info["empty"]


def test_examples_set_the_objects_and_stay(lite_medsam, blob_image):
    img, truth = blob_image
    examples = np.where(np.isin(truth, [1, 4]), truth, 0)
    labels, info = segment_everything(img, model=lite_medsam, examples=examples, return_info=True)
    assert info["examples"] == 2 and match_scores(labels, truth)["f1"] == 1.0
    assert np.array_equal(labels[examples > 0], examples[examples > 0])  # kept as they were
    with pytest.raises(ValueError, match=r"shape \(128, 128\)"):
        segment_everything(img, model=lite_medsam, examples=examples[:64])
    with pytest.raises(ValueError, match="no objects"):
        segment_everything(img, model=lite_medsam, examples=np.zeros_like(truth))
    with pytest.raises(ValueError, match="min_area"):
        segment_everything(img, model=lite_medsam, params={"min_area": 500, "max_area": 100})
    with pytest.raises(ValueError, match="edge_outlines must be True or False"):
        segment_everything(img, model=lite_medsam, params={"edge_outlines": "no"})
