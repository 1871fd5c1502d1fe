"""F1 floors of segment everything on variants of the real nuclei image and on a synthetic 3D stack.

The variants are built from the real stardist image with exactly known ground truth
(:mod:`napari_sam.io.sample_variants`); the whole table is ``benchmarks/bench_automatic.py``. The floors
sit a little under what the default model and settings measured (``docs/automatic.md``), so a change
that loses quality on another modality than the one it was tuned on fails here.
"""

import numpy as np
import pytest

from napari_sam.automatic import match_scores, segment_everything, segment_stack
from napari_sam.io.sample_variants import anisotropic_stack, variant

FLOORS = {"he": 0.85, "inverted": 0.85}  # fp32 0.870 / 0.860, bf16 0.870 / 0.904 (the target: 0.80)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FLOORS))
def test_variant_f1_floor(lite_medsam, nuclei_data, name):
    image, truth = variant(name, *nuclei_data)
    labels, info = segment_everything(image, model=lite_medsam, return_info=True)
    assert info["polarity"] == "dark"  # both show dark nuclei: H&E through its haematoxylin
    assert match_scores(labels, truth)["f1"] >= FLOORS[name]


@pytest.mark.slow
def test_dim_anisotropic_stack_f1_floor_and_empty_end_planes(lite_medsam):
    stack, truth = anisotropic_stack((10, 96, 96), count=10, seed=1)
    labels = segment_stack(stack, model=lite_medsam)
    empty = [z for z in range(truth.shape[0]) if not truth[z].any()]
    assert all(not labels[z].any() for z in empty)  # noise-only planes: nothing proposed
    assert match_scores(labels, truth)["f1"] >= 0.7
    assert len(np.unique(labels)) - 1 <= 1.5 * (len(np.unique(truth)) - 1)


@pytest.mark.slow
def test_blurry_small_nuclei_get_more_context_and_a_lower_score_bar(lite_medsam, nuclei_data):
    """2× down-scaled nuclei: the model scores the wider zoom higher (0.691 at zoom 7 before it chose);
    the typical proposals' answers score a median 0.75 (0.85–0.87 on the other variants), so the bar
    drops to 0.1 under that. Measured 0.886 in fp32, 0.874 in bf16 (block-majority truth)."""
    image, truth = variant("down2", *nuclei_data)
    labels, info = segment_everything(image, model=lite_medsam, return_info=True)
    assert info["zoom_factor"] == 10.0
    assert info["zoom_scores"]["10"] > info["zoom_scores"]["7"]
    assert info["score_threshold"] < 0.7 and info["score_threshold_from"] == "typical objects"
    assert match_scores(labels, truth)["f1"] >= 0.80


@pytest.mark.slow
def test_five_examples_on_uneven_illumination(lite_medsam, nuclei_data):
    """Five ground-truth nuclei as examples: their size guides the image's own size estimate (taken as
    the diameter itself, it cost F1 0.835 → 0.779 here), and F1 passes the issue's 0.85."""
    image, truth = variant("uneven", *nuclei_data)
    ids = np.random.default_rng(0).choice(np.unique(truth)[1:], size=5, replace=False)
    examples = np.where(np.isin(truth, ids), truth, 0)
    labels, info = segment_everything(image, model=lite_medsam, examples=examples, return_info=True)
    assert info["examples"] == 5
    assert np.array_equal(labels[examples > 0], examples[examples > 0])
    assert match_scores(labels, truth)["f1"] >= 0.85  # measured 0.891 in fp32, 0.891–0.899 in bf16


@pytest.mark.slow
def test_five_examples_on_blurry_small_nuclei_bring_the_score_threshold_down(lite_medsam, nuclei_data):
    """2× down: the model scores these nuclei lower than the original's, and so it scores the examples'
    own boxes (median 0.73): candidates pass down to 0.1 under that. F1 passes the issue's 0.85 (measured
    0.899 in fp32, 0.895 in bf16, block-majority truth)."""
    image, truth = variant("down2", *nuclei_data)
    ids = np.random.default_rng(0).choice(np.unique(truth)[1:], size=5, replace=False)
    examples = np.where(np.isin(truth, ids), truth, 0)
    labels, info = segment_everything(image, model=lite_medsam, examples=examples, return_info=True)
    assert info["score_threshold"] < 0.7
    assert match_scores(labels, truth)["f1"] >= 0.85
