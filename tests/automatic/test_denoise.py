"""Denoising noisy images before segment everything (:mod:`napari_sam.automatic.denoise`)."""

import numpy as np
import pytest

from napari_sam.automatic import match_scores, segment_everything
from napari_sam.automatic.box_mode import BoxModeParams
from napari_sam.automatic.denoise import (
    DenoisedPlanes,
    contrast_to_noise,
    model_view,
    needs_denoising,
    stack_view,
)
from napari_sam.automatic.scale import pixel_noise
from napari_sam.automatic.summary import describe_reading
from napari_sam.image.normalize import compute_scaling, prepare_image
from napari_sam.image.planes import make_source
from napari_sam.io.sample_variants import VARIANTS_2D, anisotropic_stack, variant


def _gray(image):
    x = image.astype(np.float32)
    return x.mean(axis=-1) if x.ndim == 3 else x


def test_only_the_noisy_variant_is_denoised(nuclei_data):
    decided = {name: needs_denoising(_gray(variant(name, *nuclei_data)[0]))[0] for name in VARIANTS_2D}
    assert decided == {name: name == "lowsnr" for name in VARIANTS_2D}


def test_contrast_to_noise_of_flat_and_clean_images():
    assert contrast_to_noise(np.full((32, 32), 7.0)) == 0.0
    square = np.zeros((64, 64), np.float32)
    square[16:48, 16:48] = 100.0
    assert contrast_to_noise(square) == float("inf")  # no pixel noise at all: never denoised
    assert not needs_denoising(square)[0]


def test_the_denoised_view_keeps_shape_scaling_and_missing_pixels(nuclei_data):
    noisy = variant("lowsnr", *nuclei_data)[0].astype(np.float32)
    noisy[5, 7] = np.nan
    prepared = prepare_image(noisy)
    view, evidence = model_view(prepared, "auto")
    assert evidence["denoised"] and evidence["contrast_to_noise"] < 5
    assert view.shape == prepared.shape and view.layout == prepared.layout
    assert view.scaling == compute_scaling(view.data)  # scaled from its own pixels, like any image
    assert np.isnan(view.data[5, 7, 0]) and np.isfinite(view.data[np.isfinite(noisy)]).all()
    before = pixel_noise(np.nan_to_num(prepared.data[..., 0]))
    assert pixel_noise(np.nan_to_num(view.data[..., 0])) < 0.5 * before
    same, off = model_view(prepared, False)
    assert same is prepared and off == {"denoised": False}


def test_denoise_setting_is_checked():
    with pytest.raises(ValueError, match="denoise must be True, False or 'auto'"):
        BoxModeParams(denoise="yes")


@pytest.mark.slow
def test_low_snr_nuclei_are_denoised_and_found(lite_medsam, nuclei_data):
    """Poisson counts, objects about 3 noise levels above their background: F1 0.778 without denoising,
    0.821 with it (bf16)."""
    image, truth = variant("lowsnr", *nuclei_data)
    labels, info = segment_everything(image, model=lite_medsam, return_info=True)
    assert info["denoised"] is True
    assert "noisy image denoised" in describe_reading(info)
    assert match_scores(labels, truth)["f1"] >= 0.8


def test_pure_noise_is_not_denoised_into_objects():
    noise = np.random.default_rng(0).normal(1000, 50, (96, 96))
    noisy, evidence = needs_denoising(noise)
    assert not noisy and evidence["contrast_to_noise"] < 0.5


def test_a_dim_stack_is_denoised_as_a_whole_with_one_scaling():
    stack, _ = anisotropic_stack((10, 96, 96), count=10, seed=1)
    source = make_source(stack, stack_axis=0)
    view, evidence = stack_view(source, "auto", [1, 2, 3])
    assert isinstance(view, DenoisedPlanes) and evidence["denoised"] and evidence["contrast_to_noise"] < 5
    first, last = view.plane(1), view.plane(9)  # an empty end plane is denoised like the others
    assert first.scaling == last.scaling != source.scaling
    noisy = np.asarray(source.plane(1).data[..., 0], float)
    assert pixel_noise(first.data[..., 0]) < 0.5 * pixel_noise(noisy)
    assert stack_view(source, False, [1, 2, 3]) == (source, {"denoised": False})
    with pytest.raises(ValueError, match="plane 10 does not exist"):
        view.plane(10)
