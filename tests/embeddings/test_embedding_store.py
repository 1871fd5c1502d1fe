"""The persistent zarr embedding cache: signature, invalidation, resume, atomic flags."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import torch
import zarr

from napari_sam.embeddings.embedder import Cancelled
from napari_sam.embeddings.store import EmbeddingStore, fingerprint
from napari_sam.io.samples import blobs
from napari_sam.segmenter import Segmenter

SHAPE = (448, 448)  # 2 × 2 tiles of 256 px with a 32 px halo
TILES = dict(tile_size=256, halo=32)


@pytest.fixture(scope="module")
def image():
    return blobs(SHAPE, [(100, 100), (330, 330), (120, 340)], [20, 25, 18], seed=5)


# -- fingerprint -----------------------------------------------------------------------------------
def test_fingerprint_is_independent_of_chunks_and_container(image, tmp_path):
    img = image[0][None]
    ref = fingerprint(img)
    assert fingerprint(da.from_array(img, chunks=(1, 100, 70))) == ref
    z = zarr.create_array(str(tmp_path / "a.zarr"), shape=img.shape, chunks=(1, 128, 128), dtype=img.dtype)
    z[...] = img
    assert fingerprint(z) == ref
    changed = img.copy()
    changed[0, 300, 17] += 1
    assert fingerprint(changed) != ref
    assert fingerprint(img.astype(np.int32)) != ref


# -- the store, no model -----------------------------------------------------------------------------
def test_store_statuses_and_flags(tmp_path):
    path = tmp_path / "c.zarr"
    sig = {"model": {"name": "m"}, "data": {"fingerprint": "abc"}, "grid": {"tile_size": 256}}
    store = EmbeddingStore.open(path, sig, planes=2, tiles=3, embedding_shape=(4, 8, 8))
    assert store.status == "new" and store.count_done() == 0
    store.write(1, [0, 2], np.ones((2, 4, 8, 8), np.float32))
    again = EmbeddingStore.open(path, sig, planes=2, tiles=3, embedding_shape=(4, 8, 8))
    assert again.status == "resumed"
    assert again.done_mask().tolist() == [[False, False, False], [True, False, True]]
    assert again.read(1, 2).dtype == np.float16 and (again.read(1, 2) == 1).all()
    assert again.read(0, 0) is None
    again.write(0, [0, 1, 2], np.zeros((3, 4, 8, 8)))
    again.write(1, [1], np.zeros((1, 4, 8, 8)))
    assert EmbeddingStore.open(path, sig, planes=2, tiles=3, embedding_shape=(4, 8, 8)).status == "complete"
    stale = {**sig, "data": {"fingerprint": "xyz"}}
    rebuilt = EmbeddingStore.open(path, stale, planes=2, tiles=3, embedding_shape=(4, 8, 8))
    assert rebuilt.status == "rebuilt" and rebuilt.changed == ["data.fingerprint"]
    assert rebuilt.count_done() == 0


def test_an_embedding_written_without_its_flag_is_not_taken(tmp_path):
    """An interruption between a tile's data and its flag leaves the tile to be encoded again."""
    sig = {"k": 1}
    store = EmbeddingStore.open(tmp_path / "c.zarr", sig, planes=1, tiles=2, embedding_shape=(2, 4, 4))
    store.embeddings[0, 1] = np.full((2, 4, 4), 7, np.float16)  # data landed, flag did not
    reopened = EmbeddingStore.open(tmp_path / "c.zarr", sig, planes=1, tiles=2, embedding_shape=(2, 4, 4))
    assert not reopened.is_done(0, 1) and reopened.read(0, 1) is None


def test_a_folder_that_is_not_a_cache_is_refused_and_kept(tmp_path):
    other = tmp_path / "results"
    other.mkdir()
    (other / "keep.txt").write_text("precious")
    with pytest.raises(ValueError, match="not a napari-sam embedding cache"):
        EmbeddingStore.open(other, {"k": 1}, planes=1, tiles=1)
    assert (other / "keep.txt").read_text() == "precious"


# -- invalidation through the Segmenter (no encoder runs: encode=False) --------------------------------
def test_stale_cache_is_detected_for_data_parameters_and_model(lite_medsam, image, tmp_path):
    path = tmp_path / "cache.zarr"
    seg = Segmenter(lite_medsam)
    seg.set_image(image[0], cache=path, encode=False, **TILES)
    assert seg.store.status == "new"
    seg.set_image(image[0], cache=path, encode=False, **TILES)
    assert seg.store.status == "resumed" and seg.store.changed == []

    changed = image[0].copy()
    changed[400, 20] += 5  # one pixel, far from every prompt
    seg.set_image(changed, cache=path, encode=False, **TILES)
    assert seg.store.status == "rebuilt" and seg.store.changed == ["data.fingerprint"]

    seg.set_image(changed, cache=path, encode=False, tile_size=256, halo=16)
    assert seg.store.status == "rebuilt" and "grid.halo" in seg.store.changed

    scaling = seg.source.scaling
    other = type(scaling)(tuple(v + 10 for v in scaling.low), scaling.high)
    seg.set_image(changed, cache=path, encode=False, scaling=other, tile_size=256, halo=16)
    assert seg.store.status == "rebuilt" and any(
        c.startswith("preprocessing.scaling") for c in seg.store.changed
    )

    # the same architecture with other weights (e.g. a fine-tune): another checkpoint hash
    state = torch.load(lite_medsam.checkpoint, map_location="cpu", weights_only=False)
    inner = state.get("model", state)
    first = next(k for k, v in inner.items() if torch.is_floating_point(v))
    inner[first] = inner[first] + 0.01
    tuned = tmp_path / "tuned.pth"
    torch.save(state, tuned)
    from napari_sam.models.loading import load_model

    seg2 = Segmenter(load_model(tuned, device="cpu"))
    seg2.set_image(changed, cache=path, encode=False, scaling=other, tile_size=256, halo=16)
    assert seg2.store.status == "rebuilt" and "model.checkpoint_sha256" in seg2.store.changed


# -- resume after an interruption, and a finished cache runs no encoder -------------------------------
def test_interrupted_run_resumes_and_finished_cache_runs_no_encoder(lite_medsam, image, tmp_path):
    path = tmp_path / "cache.zarr"
    seen = []
    seg = Segmenter(lite_medsam, batch_size=1)
    with pytest.raises(Cancelled):
        seg.set_image(
            image[0],
            cache=path,
            progress=lambda d, t: seen.append((d, t)),
            should_stop=lambda: len(seen) >= 2,
            **TILES,
        )
    assert seen == [(1, 4), (2, 4)]
    assert seg.embeddings.encoded_count == 2 and seg.store.count_done() == 2

    resumed = Segmenter(lite_medsam, batch_size=1)
    resumed.set_image(image[0], cache=path, **TILES)
    assert resumed.store.status == "resumed"
    assert resumed.embeddings.encoded_count == 2  # only the rest
    assert resumed.store.count_done() == 4

    reopened = Segmenter(lite_medsam, zoom=False)
    reopened.set_image(image[0], cache=path, **TILES)
    assert reopened.store.status == "complete"
    box = (75, 75, 125, 125)
    a = reopened.predict(box=box)
    assert reopened.embeddings.encoded_count == 0  # tiles only, all from the cache
    assert reopened.grid.index_of(a.windows[0]) is not None
    # what a fresh session serves is exactly what the reopened cache serves
    resumed.zoom = reopened.zoom
    b = resumed.predict(box=box)
    np.testing.assert_array_equal(a.masks, b.masks)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)


def test_large_image_without_cache_uses_a_temporary_store(lite_medsam, image):
    seg = Segmenter(lite_medsam)
    seg.set_image(image[0], encode=False, **TILES)
    path = seg.store.path
    assert path.exists() and seg.store.signature["data"]["fingerprint"] == "temporary"
    seg.set_image(image[0][:200, :200], encode=False)  # small image: whole-image window, no store
    assert seg.store is None and not path.exists()


def test_a_tile_finished_after_the_temporary_store_is_removed_is_dropped_quietly(lite_medsam, image, caplog):
    # a background worker may finish a tile after the session moved on and deleted its temporary cache
    seg = Segmenter(lite_medsam)
    seg.set_image(image[0], encode=False, **TILES)
    old = seg.store
    folder = old.path.parent
    embedding = np.zeros(old.embeddings.shape[2:], dtype=old.dtype)
    seg.set_image(image[0][:200, :200], encode=False)
    assert not folder.exists() and old.detached
    with caplog.at_level("WARNING", logger="napari_sam"):
        old.write(0, [0], embedding[None])
    assert not folder.exists()  # not made again for a lock file
    assert not any("rebuilt by another process" in r.getMessage() for r in caplog.records)
    assert not old.is_done(0, 0)
