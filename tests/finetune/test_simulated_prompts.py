"""Simulated prompts: click-search boxes span the sizes the search tries; only the kept sizes teach masks."""

from __future__ import annotations

import numpy as np
import torch

from napari_sam.finetune.prompts import click_boxes


def test_click_boxes_span_the_search_sizes_and_say_their_relative_side():
    rng = np.random.default_rng(0)
    target = torch.zeros(1, 256, 256, dtype=torch.bool)
    target[0, 100:120, 90:130] = True  # extent 40 logit pixels = 40 model pixels at scale 1
    boxes = np.array([[90, 100, 129, 119]] * 100, dtype=np.float32)
    out, relative = click_boxes(boxes, target.expand(100, -1, -1), rng, scale=1.0, per_click=4)
    assert out.shape == (400, 4)
    sides = out[:, 2] - out[:, 0]
    np.testing.assert_allclose(sides, 40 * relative, rtol=1e-5)
    assert relative.min() >= 0.35 and relative.max() <= 3.0
    # smaller than the object (fragments), kept sizes and larger ones all occur
    assert (relative < 1).mean() > 0.25 and ((relative >= 1) & (relative <= 2)).mean() > 0.25
    assert (relative > 2).mean() > 0.1
    # every box is centred on a pixel of the object
    centres = (out[:, :2] + out[:, 2:]) / 2
    assert target[0, centres[:, 1].round().astype(int), centres[:, 0].round().astype(int)].all()
    # one click per object, its boxes spread from small to large
    groups = centres.reshape(100, 4, 2)
    np.testing.assert_allclose(groups, groups[:, :1].repeat(4, axis=1), atol=1e-4)
    assert (np.diff(relative.reshape(100, 4), axis=1) > 0).all()


def test_ranking_loss_counts_only_misordered_pairs():
    from napari_sam.finetune.train import _ranking_loss

    true = torch.tensor([[0.9, 0.5, 0.1]])
    assert float(_ranking_loss(torch.tensor([[0.8, 0.6, 0.2]]), true)) == 0.0
    assert float(_ranking_loss(torch.tensor([[0.2, 0.6, 0.8]]), true)) > 0.4


def test_objects_are_also_seen_through_the_window_their_click_is_searched_in(lite_medsam, nuclei_data):
    """Every object gets a second sample in the window its click is searched in, as the session that
    committed the objects searches it: the zoom window of an object of their median extent centred on
    the click (at least half the model's input), or the tile; aligned with its zoom-window sample."""
    from napari_sam.finetune.augment import Variant
    from napari_sam.finetune.data import find_objects, training_planes
    from napari_sam.finetune.samples import build_samples
    from napari_sam.geometry.tiling import TileGrid
    from napari_sam.geometry.windows import ZoomRule

    img, lab = nuclei_data
    pad = ((0, 64), (0, 64))  # 576²: larger than 2 × 256, so tiled
    planes, _ = training_planes(np.pad(img, pad, mode="reflect"), np.pad(lab, pad))
    objects = [o for o in find_objects(planes) if 200 <= (o.bbox[0] + o.bbox[2]) / 2 <= 300][:3]
    grid = TileGrid.for_image((576, 576), 256)
    for extent, in_tiles in ((None, False), (10.0, True)):  # 10 px: a window under half the input
        samples = build_samples(
            lite_medsam, planes, [(objects, Variant())], zoom=ZoomRule(), click_extent=extent
        )
        assert not grid.is_single and len(samples.search) == len(samples.samples) == len(objects)
        for zoomed, searched in zip(samples.samples, samples.search):
            assert zoomed.obj == searched.obj
            assert (searched.window in grid.tiles) is in_tiles
            assert 128 <= searched.window.size <= 256
            if in_tiles:  # the same object seen smaller, at the tile's scale
                assert zoomed.window.size < searched.window.size
                assert searched.target.sum() < zoomed.target.sum()
    subset = samples.subset({objects[1]})
    assert [s.obj for s in subset.search] == [objects[1]]
