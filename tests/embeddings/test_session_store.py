"""The store of a session's image: a temporary one is removed whole, a named cache is reopened for the same
image and model and rebuilt (saying what changed) when the pixels or the scaling differ."""

from __future__ import annotations

import os

from napari_sam.embeddings.session_store import open_session_store, remove_temporary_store, store_signature
from napari_sam.geometry.tiling import TileGrid
from napari_sam.image.planes import make_source


def _source(image):
    source = make_source(image)
    return source, TileGrid.for_image(source.plane_shape, 256, None, None)


def test_a_temporary_store_is_removed_whole(lite_medsam, nuclei_data):
    source, grid = _source(nuclei_data[0][:300, :300])
    store, temporary = open_session_store(lite_medsam, source, grid, None)
    folder = os.path.dirname(store.path)
    assert temporary and os.path.isdir(store.path)
    assert store.signature["data"]["fingerprint"] == "temporary"
    remove_temporary_store(store)
    assert not os.path.exists(folder)


def test_a_named_cache_is_reopened_for_the_same_image_and_rebuilt_for_another(
    lite_medsam, nuclei_data, tmp_path
):
    image = nuclei_data[0][:300, :300]
    source, grid = _source(image)
    cache = tmp_path / "image.embeddings.zarr"
    first, temporary = open_session_store(lite_medsam, source, grid, cache)
    assert not temporary and first.status == "new"
    first.close()
    again, _ = open_session_store(lite_medsam, *_source(image.copy()), cache)
    assert again.status == "resumed"
    again.close()
    changed = image.copy()
    changed[10, 10] += 1  # one pixel: another image, with the same scaling
    other_source, other_grid = _source(changed)
    other, _ = open_session_store(lite_medsam, other_source, other_grid, cache)
    assert other.status == "rebuilt" and other.changed == ["data.fingerprint"]
    other.close()
    a = store_signature(lite_medsam, source, grid, temporary=False)
    assert a == store_signature(lite_medsam, *_source(image.copy()), temporary=False)
