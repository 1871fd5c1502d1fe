"""The tile grid, the choice of window, and objects on seams with the real LiteMedSAM."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sam.geometry.tiling import (
    TileGrid,
    click_search_window,
    clipped_by,
    seam_margin,
    window_for_box,
)
from napari_sam.geometry.windows import Window, ZoomRule, whole_image_window
from napari_sam.io.samples import blobs
from napari_sam.segmenter import Segmenter


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


# -- where a click is searched -------------------------------------------------------------------
def test_a_click_is_searched_in_the_zoom_window_of_a_typical_object_where_one_fits():
    single, tiled = TileGrid.for_image((512, 512), 256), TileGrid.for_image((1024, 1024), 256)
    rule = ZoomRule()
    click = [(200.0, 300.0)]
    for grid, tile in (
        (single, whole_image_window((512, 512))),
        (tiled, tiled.tile(tiled.tile_at(*click[0]))),
    ):
        window, zoomed = click_search_window(click, 30.0, grid, rule, 256)  # a nucleus-sized object
        assert zoomed and 128 <= window.size < tile.size
        assert window.contains_box((190, 290, 210, 310))
        # unknown size, a window under half the model's input, or no zoom rule: the tile
        for extent, zoom in ((0.0, rule), (16.0, rule), (30.0, ZoomRule(enabled=False))):
            assert click_search_window(click, extent, grid, zoom, 256) == (tile, False)
    # too large an object for a window smaller than the whole 512² image: the whole image
    assert click_search_window(click, 120.0, single, rule, 256) == (whole_image_window((512, 512)), False)


# -- the grid, no model --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape, tile, halo", [((1000, 700), 256, 32), ((256, 3000), 256, 16), ((513, 513), 128, 0)]
)
def test_grid_covers_the_image_and_cores_partition_it(shape, tile, halo):
    grid = TileGrid(shape, tile, halo)
    owner = np.full(shape, -1)
    for t, win in enumerate(grid.tiles):
        r0, c0, r1, c1 = grid.core(t)
        assert (owner[r0:r1, c0:c1] == -1).all()
        owner[r0:r1, c0:c1] = t
        # the core lies inside its tile, ≥ halo from every inner edge
        assert r0 >= win.row0 and c0 >= win.col0
        assert r1 <= win.row0 + win.size and c1 <= win.col0 + win.size
        if win.row0 > 0:
            assert r0 - win.row0 >= halo
        if win.row0 + win.size < shape[0]:
            assert win.row0 + win.size - r1 >= halo
        assert grid.index_of(win) == t
    assert (owner >= 0).all()
    rng = np.random.default_rng(0)
    for r, c in zip(rng.integers(0, shape[0], 50), rng.integers(0, shape[1], 50)):
        assert grid.tile_at(r, c) == owner[r, c]


def test_default_grid_is_the_whole_image_up_to_twice_the_model_input():
    assert TileGrid.for_image((512, 400), 256).is_single
    assert TileGrid.for_image((512, 400), 256).tile(0) == whole_image_window((512, 400))
    big = TileGrid.for_image((1000, 600), 256)
    assert big.tile_size == 256 and big.halo == 32 and len(big) == big.shape[0] * big.shape[1] > 1
    assert TileGrid.for_image((1000, 600), 256, tile_size=512).tile_size == 512


@pytest.mark.parametrize("bad", [dict(tile_size=8, halo=0), dict(tile_size=256, halo=128)])
def test_bad_grids_are_refused(bad):
    with pytest.raises(ValueError, match="tile_size|halo"):
        TileGrid((1000, 1000), **bad)


def test_window_choice_tile_seam_and_zoom():
    grid = TileGrid((448, 448), 256, 32)  # tiles at 0 and 192 in each axis, seams at 224
    off = ZoomRule(enabled=False)
    inside = (60, 60, 140, 140)
    assert window_for_box(inside, grid, off, 256) == grid.tile(0)
    crossing = (60, 184, 140, 264)  # straddles the column seam: in neither tile with margin
    w = window_for_box(crossing, grid, off, 256)
    assert grid.index_of(w) is None and w.contains_box(crossing, margin=seam_margin(grid))
    # zoom on: small objects get the core's zoom window, large ones the tile or a centred zoom window
    zoom = ZoomRule()
    small = (100, 100, 110, 110)
    assert window_for_box(small, grid, zoom, 256) == zoom.window_for(small, (448, 448), 256)
    assert window_for_box(crossing, grid, zoom, 256).contains_box(crossing)
    # a single-tile grid is exactly the core's rule
    single = TileGrid.single((448, 448))
    assert window_for_box(inside, single, off, 256) == whole_image_window((448, 448))
    assert window_for_box(small, single, zoom, 256) == zoom.window_for(small, (448, 448), 256)


def test_clipped_by_only_counts_inner_edges():
    win = Window(0, 192, 256)  # touches the top and right image borders of a 448² image
    assert clipped_by(win, (10, 192, 50, 220), (448, 448))  # at the left edge, inside the image
    assert not clipped_by(win, (0, 250, 50, 447), (448, 448))  # at the image border only


# -- objects on seams, real model ----------------------------------------------------------------
SEAM = (100, 224)  # on the column seam between tiles 0 and 1
AWAY = (320, 100)  # inside the core of tile (1, 0), far from its edges
RADIUS = 40


@pytest.fixture(scope="module")
def seam_image():
    return blobs((448, 448), [SEAM, AWAY], [RADIUS, RADIUS], seed=3)


@pytest.fixture(scope="module")
def tiled(lite_medsam, seam_image, tmp_path_factory):
    """The 448² image embedded as 2×2 tiles of 256 px with a 32 px halo, zoom off."""
    seg = Segmenter(lite_medsam, zoom=False)
    seg.set_image(seam_image[0], cache=tmp_path_factory.mktemp("seam") / "cache.zarr", tile_size=256, halo=32)
    assert seg.grid.shape == (2, 2) and seg.store.count_done() == 4
    return seg


def _box(gt: np.ndarray, label: int) -> tuple[int, int, int, int]:
    rc = np.argwhere(gt == label)
    return (*rc.min(axis=0), *rc.max(axis=0))


def _aligned(mask: np.ndarray, centre: tuple[int, int]) -> np.ndarray:
    """The mask's crop of ±(RADIUS + 12) px around ``centre``."""
    r, c = centre
    m = RADIUS + 12
    return mask[r - m : r + m + 1, c - m : c + m + 1]


@pytest.mark.parametrize("zoom", [False, True])
def test_object_on_a_seam_comes_out_whole(tiled, seam_image, zoom):
    _, gt = seam_image
    tiled.zoom = ZoomRule(enabled=zoom)
    try:
        on_seam = tiled.predict(box=_box(gt, 1))
        away = tiled.predict(box=_box(gt, 2))
    finally:
        tiled.zoom = ZoomRule(enabled=False)
    assert tiled.grid.index_of(on_seam.windows[0]) is None  # a window centred on it, not a tile
    if not zoom:
        assert tiled.grid.index_of(away.windows[0]) is not None  # answered by its tile
    assert _iou(on_seam.masks[0], gt == 1) >= 0.9
    assert _iou(away.masks[0], gt == 2) >= 0.9
    assert _iou(_aligned(on_seam.masks[0], SEAM), _aligned(away.masks[0], AWAY)) >= 0.9


def test_a_tile_alone_would_clip_the_seam_object(tiled, seam_image):
    """Why the centred window is needed: tile 0 sees only the left part of the object on the seam."""
    _, gt = seam_image
    box = np.asarray(_box(gt, 1), dtype=float)
    clipped = tiled._decode_group(tiled.grid.tile(0), [box], None, None, None, False, 0)
    assert clipped.masks[0][:, 256:].sum() == 0
    assert _iou(clipped.masks[0], gt == 1) < 0.9
