"""The widget's pieces without a model or a browser: tiles, binary messages, prompts, plot, progress."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from napari_sam.geometry.windows import Window
from napari_sam.image.normalize import prepare_image
from napari_sam.prediction.result import Prediction
from napari_sam.prompts import Prompts
from sam_widgets._messages import pack_mask, prediction_message, tile_message, unpack_mask
from sam_widgets._prompting import _browser_prompt
from sam_widgets._tiles import TILE, TileSource, default_limits, intensity_range, max_level, tile_bounds


def test_levels_and_bounds():
    assert max_level((256, 256)) == 0
    assert max_level((257, 100)) == 1
    assert max_level((3000, 5000)) == 5  # 5000 / 2**5 = 156 ≤ 256
    assert tile_bounds((600, 300), 0, 2, 1) == (512, 600, 256, 300)
    assert tile_bounds((600, 300), 2, 0, 0) == (0, 600, 0, 300)
    with pytest.raises(ValueError, match="outside the image"):
        tile_bounds((600, 300), 0, 0, 2)
    with pytest.raises(ValueError, match="level must be in"):
        tile_bounds((600, 300), 3, 0, 0)


def test_gray_tiles_sample_every_2_to_the_level():
    image = np.arange(600 * 520, dtype=np.float32).reshape(600, 520)
    src = TileSource(prepare_image(image))
    assert src.channels == 1 and src.max_level == 2
    t0 = src.image_tile(0, 2, 2)
    assert t0.dtype == np.uint8 and t0.shape == (600 - 512, 520 - 512)
    t1 = src.image_tile(1, 0, 0, contrast_limits=(0, 600 * 520))
    assert t1.shape == (256, 256)
    expected = np.rint(image[:512:2, :512:2] / (600 * 520) * 255).astype(np.uint8)
    np.testing.assert_array_equal(t1, expected)
    top = src.image_tile(2, 0, 0)
    assert top.shape == (150, 130)


def test_contrast_limits_map_raw_values_and_are_checked():
    image = np.tile(np.linspace(0, 1000, 256, dtype=np.float32), (256, 1))
    src = TileSource(prepare_image(image))
    tile = src.image_tile(0, 0, 0, contrast_limits=(250, 500))
    assert tile[0, 0] == 0 and tile[0, -1] == 255
    mid = int(np.argmin(np.abs(image[0] - 375)))
    assert abs(int(tile[0, mid]) - 128) <= 2
    with pytest.raises(ValueError, match="high > low"):
        src.image_tile(0, 0, 0, contrast_limits=(5, 5))
    lo, hi = default_limits(src.image)
    dmin, dmax = intensity_range(src.image)
    assert dmin <= lo < hi <= dmax and (dmin, dmax) == (0.0, 1000.0)


def test_rgb_tiles_and_lazy_reads_touch_only_their_chunks():
    da = pytest.importorskip("dask.array")
    rgb = np.random.default_rng(0).integers(0, 255, (1024, 1024, 3), dtype=np.uint8)
    reads = []

    def record(block, block_info=None):
        reads.append(block_info[0]["chunk-location"][:2])
        return block

    lazy = da.from_array(rgb, chunks=(256, 256, 3)).map_blocks(record, dtype=np.uint8)
    src = TileSource(prepare_image(lazy))
    reads.clear()
    tile = src.image_tile(0, 1, 2)
    assert tile.shape == (256, 256, 3) and src.channels == 3
    np.testing.assert_array_equal(tile, rgb[256:512, 512:768])  # uint8 RGB is shown as it is
    assert set(reads) == {(1, 2)}
    reads.clear()
    src.image_tile(0, 1, 2)  # cached: not read again
    assert reads == []


def test_labels_tiles_and_messages():
    src = TileSource(prepare_image(np.ones((300, 300)) * np.arange(300)))
    labels = np.zeros((300, 300), np.int32)
    labels[260:270, 10:20] = 70000
    assert tile_message("labels", 0, 0, 0, src.labels_tile(labels, 0, 0, 0), 3)[0]["empty"]
    tile = src.labels_tile(labels, 0, 1, 0)
    header, buffers = tile_message("labels", 0, 1, 0, tile, 3)
    assert header == {
        "type": "tile",
        "kind": "labels",
        "level": 0,
        "i": 1,
        "j": 0,
        "h": 44,
        "w": 256,
        "c": 1,
        "gen": 3,
        "empty": False,
    }
    np.testing.assert_array_equal(np.frombuffer(buffers[0], "<i4").reshape(44, 256), labels[256:, :256])
    with pytest.raises(ValueError, match="do not match"):
        src.labels_tile(labels[:10], 0, 0, 0)


def test_masks_travel_bitpacked_and_cropped_to_their_bbox():
    mask = np.zeros((500, 400), bool)
    mask[100:103, 50:61] = True
    mask[101, 70] = True
    header, payload = pack_mask(mask)
    assert header == {"row": 100, "col": 50, "h": 3, "w": 21, "area": 34}
    assert len(payload) == (3 * 21 + 7) // 8  # bits, not a JSON list of pixels
    np.testing.assert_array_equal(unpack_mask(header, payload, mask.shape), mask)
    assert pack_mask(np.zeros((4, 4), bool)) == ({"row": 0, "col": 0, "h": 0, "w": 0, "area": 0}, b"")


def test_prediction_message_places_every_candidate_in_image_coordinates():
    crops = np.zeros((3, 64, 64), bool)
    crops[0, 10:20, 5:9] = True
    crops[1, 30:31, 30:40] = True
    pred = Prediction(
        [crops],
        [(200, 100)],
        np.array([[0.9, 0.5, 0.1]], np.float32),
        np.zeros((1, 3, 256, 256), np.float32),
        [Window(200, 100, 64)],
        (512, 512),
    )
    header, buffers = prediction_message(pred, seq=7, selected=0)
    assert header["type"] == "prediction" and header["seq"] == 7 and len(buffers) == 3
    for m, cand in enumerate(header["candidates"]):
        np.testing.assert_array_equal(unpack_mask(cand, buffers[m], (512, 512)), pred.mask(0, m))
    assert header["candidates"][0]["score"] == pytest.approx(0.9)
    assert header["candidates"][2]["area"] == 0


def test_browser_prompts_are_checked_by_prompts_and_canonical():
    """The canvas sends ``{"points": [[row, col, label]], "box"}``: read by ``Prompts.from_record`` (the
    one check), sent back in canonical form; what reaches the segmenter is a ``Prompts``."""
    p = Prompts.from_record({"points": [[10, 20], [5.5, 6, 0]], "box": [40, 60, 50, 700]}, (100, 200))
    assert _browser_prompt(p) == {
        "points": [[10.0, 20.0, 1], [5.5, 6.0, 0]],
        "box": [40.0, 60.0, 50.0, 199.0],
    }
    asked = p.decoder_request()
    assert asked.points.tolist() == [[10.0, 20.0], [5.5, 6.0]] and asked.labels.tolist() == [1, 0]
    assert asked.boxes.tolist() == [[40.0, 60.0, 50.0, 199.0]]
    assert Prompts.from_record({"points": [], "box": None}).is_empty
    with pytest.raises(ValueError, match="outside the image"):
        Prompts.from_record({"points": [[100, 5]]}, (100, 200))
    with pytest.raises(ValueError, match="1 \\(positive\\) or 0"):
        Prompts.from_record({"points": [[1, 5, 2]], "box": None}, (100, 200))
    with pytest.raises(ValueError, match="unknown prompt"):
        Prompts.from_record({"pts": []}, (100, 200))
    with pytest.raises(ValueError, match="NaN"):
        Prompts.from_record({"points": [], "box": [0, 0, float("nan"), 3]}, (100, 200))
    with pytest.raises(ValueError, match="max < min"):
        Prompts.from_record({"points": [], "box": [50, 60, 40, 70]}, (100, 200))
    with pytest.raises(ValueError, match="one box per object"):
        _browser_prompt(Prompts.build(boxes=[(0, 0, 5, 5), (1, 1, 6, 6)]))
    assert p.describe() == "2 points (1 positive, 1 negative) + 1 box"


def test_show_overlay_draws_image_and_labels():
    import matplotlib

    matplotlib.use("Agg")
    from sam_widgets import show_overlay
    from sam_widgets._plot import label_colors

    image = np.random.default_rng(1).normal(100, 10, (300, 500))
    labels = np.zeros((300, 500), np.int32)
    labels[10:50, 20:80] = 1
    labels[100:120, 300:310] = 2
    ax = show_overlay(image, labels, title="nuclei")
    assert len(ax.images) == 3 and ax.get_title() == "nuclei"
    colors = label_colors(labels)
    assert colors.shape == (300, 500, 4) and colors[0, 0, 3] == 0 and colors[20, 30, 3] > 0
    assert not np.allclose(colors[20, 30], colors[110, 305])
    big = show_overlay(np.zeros((5000, 100)) + np.arange(100), max_size=1000)
    assert big.images[0].get_array().shape[0] == 1000
    with pytest.raises(ValueError, match="do not match"):
        show_overlay(image, labels[:10])


def test_progress_bar_adapts_done_total_callbacks():
    from sam_widgets import progress_bar

    with progress_bar("embedding") as progress:
        for done in range(1, 5):
            progress(done, 4)
    with progress_bar("x", enabled=False) as progress:
        progress(1, 2)


def test_javascript_ships_in_the_package_without_a_cdn():
    static = Path(__file__).resolve().parents[2] / "src" / "sam_widgets" / "static"
    assert "export default" in (static / "widget.js").read_text()  # the entry module
    modules = sorted(static.glob("*.js"))
    assert len(modules) >= 5  # split by role (test_bundle.py checks which)
    for path in modules:
        assert not re.search(r"""(import|from)\s*\(?\s*["']https?://""", path.read_text()), path.name
    assert (static / "widget.css").is_file()
    assert TILE == 256
