"""The notebook widget on a large image: prompted at once while its tiles are embedded in a background
thread, those the canvas shows first; stop and resume keep finished tiles. Real weights, the real nuclei
padded to 640 × 600 (nine 256-px tiles). The canvas' tile requests are sent as the browser sends them."""

from __future__ import annotations

import time

import numpy as np
import pytest

from sam_widgets import SamWidget

PAD = ((64, 64), (44, 44))


def _wait(predicate, seconds: float = 300.0) -> None:
    end = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError("background embedding did not finish")
        time.sleep(0.05)


@pytest.fixture
def big(nuclei_data):
    image, truth = nuclei_data
    return np.pad(image, PAD, mode="reflect"), np.pad(truth, PAD, mode="constant")


def test_large_image_prompted_while_tiles_are_embedded_view_first(lite_medsam, big):
    from napari_sam.segmenter import Segmenter

    image, truth = big
    w = SamWidget(image, segmenter=Segmenter(lite_medsam), encode=False, progress=False)
    seg = w.segmenter
    assert seg.is_tiled and seg.embeddings.encoded_count == 0 and not w.embedding_in_background
    # the canvas shows the bottom-right corner (display tiles of 256 px at level 0)
    w._on_message(w, {"type": "tiles", "kind": "image", "keys": [[0, 2, 2]], "gen": 1}, [])
    corner = seg.grid.tile_at(600, 560)
    first: list = []
    seg.events.embedding_progress.connect(
        lambda done, total: first or first.append((seg.store.is_done(0, corner), seg.store.count_done()))
    )
    w.resume_embedding()
    assert w.embedding_in_background
    # a box elsewhere is answered at once from its own window, while the background runs
    ids, areas = np.unique(truth[truth > 0], return_counts=True)
    label = next(int(i) for i in ids[(areas > 250) & (areas < 900)] if np.nonzero(truth == i)[0].max() < 250)
    rows, cols = np.nonzero(truth == label)
    w.set_box((rows.min(), cols.min(), rows.max(), cols.max()))
    assert (w.mask & (truth == label)).sum() / (w.mask | (truth == label)).sum() >= 0.7
    _wait(lambda: bool(first))  # background tiles go on once prompts have been quiet for a moment

    w.stop_embedding()
    assert not w.embedding_in_background
    assert first[0][0] and first[0][1] <= 3  # the tile in view was the first the background embedded
    kept = seg.store.count_done()
    w.resume_embedding()
    _wait(lambda: not w.embedding_in_background)
    assert seg.embeddings.pending_tiles(0) == [] and seg.store.count_done() >= kept
    assert w.kernel_progress == ""  # the canvas' progress line is gone once all tiles are done


def test_small_image_is_embedded_at_once_and_has_no_background(lite_medsam, nuclei_data):
    from napari_sam.segmenter import Segmenter

    w = SamWidget(nuclei_data[0], segmenter=Segmenter(lite_medsam), progress=False)
    assert not w.segmenter.is_tiled and w.segmenter.embeddings.encoded_count == 1
    assert not w.embedding_in_background
    with pytest.raises(ValueError, match="not tiled"):
        w.resume_embedding()
