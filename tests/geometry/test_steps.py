"""One rule for window origins and one for √2 size steps, and every user of them."""

import math

import numpy as np
import pytest

from napari_sam.automatic.everything import tile_origins
from napari_sam.automatic.planning import side_classes
from napari_sam.automatic.point_grid import crop_windows
from napari_sam.geometry.steps import grid_starts, spread_starts, sqrt2_sides, stepped_side
from napari_sam.geometry.tiling import TileGrid
from napari_sam.geometry.windows import ZoomRule


def test_sqrt2_steps():
    assert sqrt2_sides(256, 1025) == [256, 362, 512, 724, 1024]
    assert sqrt2_sides(256, 256) == []
    assert [stepped_side(w, 256) for w in (1, 255, 256, 257, 362, 363, 1024)] == [
        256,
        256,
        256,
        362,
        362,
        512,
        1024,
    ]
    # the zoom rule and the automatic mode's size classes step on the same ladder
    rule = ZoomRule(factor=4.0, min_upscale_window=0.25)
    ladder = set(side_classes((100_000, 10), 1024))
    for extent in (3, 40, 64, 65, 90, 91, 300):
        assert rule.side_for((0, 0, extent - 1, extent - 1), 1024) in ladder


@pytest.mark.parametrize("length", [1, 100, 511, 512, 513, 1000, 2047, 4097])
@pytest.mark.parametrize(("side", "overlap"), [(512, 0), (512, 128), (256, 255), (100, 50)])
def test_grid_starts_cover_with_the_overlap_and_no_more_windows_than_needed(length, side, overlap):
    starts = grid_starts(length, side, overlap)
    assert starts[0] == 0
    if side >= length:
        assert starts == [0]
        return
    assert starts[-1] == length - side  # the last window ends at the image edge
    gaps = np.diff(starts)
    assert (gaps > 0).all()
    assert (side - gaps >= overlap).all()  # neighbours overlap by at least ``overlap``
    # one window fewer could not cover the length with that overlap
    assert (len(starts) - 2) * (side - overlap) + side < length


def test_spread_starts_are_even():
    assert spread_starts(1000, 400, 3) == [0, 300, 600]
    assert spread_starts(300, 400, 3) == [0]
    assert spread_starts(1000, 400, 1) == [0]


def test_every_grid_takes_its_origins_from_the_one_rule():
    shape = (3000, 2100)
    grid = TileGrid.for_image(shape, 1024)
    assert grid.row_starts == tuple(grid_starts(3000, 1024, 2 * grid.halo))
    assert grid.col_starts == tuple(grid_starts(2100, 1024, 2 * grid.halo))
    tiles = tile_origins(shape, 2048, 256)
    assert sorted({t[0] for t in tiles}) == grid_starts(3000, 2048, 256)
    assert sorted({t[1] for t in tiles}) == grid_starts(2100, 2048, 256)
    layer1 = [w for layer, w in crop_windows(shape, 1, 0.25) if layer == 1]
    side = layer1[0].size
    assert sorted({w.row0 for w in layer1}) == spread_starts(3000, side, 2)
    assert side == math.ceil((3000 + int(0.25 * 3000)) / 2)
