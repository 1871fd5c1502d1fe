"""Embedding features of masks, the examples' prototype and its similarity floor."""

import numpy as np
import torch

from napari_sam.automatic.examples import like_examples
from napari_sam.automatic.filters import Candidates
from napari_sam.automatic.prototype import pool_feature, prototype, similarity, similarity_floor
from napari_sam.geometry.windows import Window


def test_pool_feature_averages_the_tokens_under_the_mask():
    # 2 channels: token row index and token column index, on a 64 × 64 grid over a 256-pixel window
    rows, cols = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    emb = torch.stack([rows, cols])[None]
    window = Window(100, 200, 128)  # image pixels 100..227 × 200..327, 2 model pixels each: 2 px/token
    mask = np.zeros((10, 6), bool)
    mask[:4, :] = True  # image rows 120..123, cols 250..255 → tokens rows 10..11, cols 25..27
    feat = pool_feature(emb, window, 256, mask, (120, 250))
    np.testing.assert_allclose(feat, [10.5, 26.0], atol=1e-5)
    assert not pool_feature(emb, window, 256, np.zeros((3, 3), bool), (120, 250)).any()


def test_the_floor_sits_below_the_examples_and_like_examples_drops_the_unlike():
    rng = np.random.default_rng(0)
    base = rng.normal(size=16)
    examples = base + 0.2 * rng.normal(size=(5, 16))
    proto = prototype(examples)
    floor = similarity_floor(examples)
    assert similarity(examples, proto).min() > floor
    assert similarity_floor(examples[:1]) < 1.0
    other = rng.normal(size=16)  # unrelated: cosine near 0
    feats = np.stack([base + 0.2 * rng.normal(size=16), other, *examples]).astype(np.float32)
    cands = Candidates(
        [np.ones((3, 3), bool)] * 7,
        np.zeros((7, 2), np.int64),
        np.full(7, 0.9, np.float32),
        np.full(7, 0.9, np.float32),
        np.arange(7),
        feats,
    )
    kept, weight, info = like_examples(cands, num_proposals=2)
    assert list(kept.prompt) == [0] and info["like_examples_dropped"] == 1
    assert 0.5 < weight[0] <= 1.0


def test_alike_examples_do_not_make_a_tight_floor():
    """Four near-identical examples spread almost nothing; their class spreads more (a twentieth of all
    stardist nuclei sit 0.56–0.71 from their prototype), so the floor takes at least MIN_SPREAD."""
    from napari_sam.automatic.prototype import MIN_SPREAD

    rng = np.random.default_rng(1)
    base = rng.normal(size=16)
    alike = base + 0.01 * rng.normal(size=(4, 16))
    assert similarity(alike, prototype(alike)).min() > 0.99
    assert np.isclose(similarity_floor(alike, slack=5.0), 1.0 - 5.0 * MIN_SPREAD, atol=0.01)
    assert np.isclose(similarity_floor(alike[:1], slack=5.0), 1.0 - 5.0 * MIN_SPREAD)


def test_a_mask_cut_by_the_images_edge_is_not_judged_by_its_look():
    rng = np.random.default_rng(2)
    base = rng.normal(size=16)
    examples = base + 0.2 * rng.normal(size=(5, 16))
    unlike = rng.normal(size=(2, 16))  # cosine near 0: under any floor
    cands = Candidates(
        [np.ones((3, 3), bool)] * 7,
        np.array([[0, 4], [4, 4]] + [[4, 4]] * 5),  # the first unlike mask reaches the top edge
        np.full(7, 0.9, np.float32),
        np.full(7, 0.9, np.float32),
        np.arange(7),
        np.concatenate([unlike, examples]).astype(np.float32),
    )
    kept, _, info = like_examples(cands, num_proposals=2, image_shape=(20, 20))
    assert list(kept.prompt) == [0] and info["like_examples_dropped"] == 1
    assert len(like_examples(cands, num_proposals=2)[0]) == 0  # without the image's shape: both dropped
