"""The embedding cache under faults (issue 14): damaged chunks are caught by their checksums and
encoded again, and two processes writing the same cache folder never mix their embeddings.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from napari_sam.embeddings.folder_lock import FolderLock
from napari_sam.embeddings.store import EmbeddingStore

EMB = (4, 8, 8)


def _store(path, sig=None, tiles=3):
    return EmbeddingStore.open(path, sig or {"k": 1}, planes=1, tiles=tiles, embedding_shape=EMB)


def _chunk(path, tile):
    return path / "embeddings" / "c" / "0" / str(tile) / "0" / "0" / "0"


def _damage(chunk, how):
    if how == "overwritten":  # same size, different bytes inside
        data = bytearray(chunk.read_bytes())
        for i in range(len(data) // 2, min(len(data), len(data) // 2 + 16)):
            data[i] ^= 0x5A
        chunk.write_bytes(bytes(data))
    elif how == "deleted":  # reads back as the fill value (zeros)
        chunk.unlink()
    else:  # garbage: the codec cannot decode it
        chunk.write_bytes(os.urandom(200))


@pytest.mark.parametrize("how", ["overwritten", "deleted", "garbage"])
def test_a_damaged_tile_is_never_served_and_is_flagged_for_encoding(tmp_path, caplog, how):
    path = tmp_path / "c.zarr"
    values = np.random.default_rng(0).normal(size=(3, *EMB)).astype(np.float32)
    _store(path).write(0, [0, 1, 2], values)
    _damage(_chunk(path, 1), how)
    _damage(_chunk(path, 2), how)
    store = _store(path)
    assert store.status == "complete"  # nothing is read at open
    with caplog.at_level(logging.WARNING, logger="napari_sam.embeddings.store"):
        assert np.array_equal(store.read(0, 0), values[0].astype(np.float16))
        assert store.read(0, 1) is None and store.read(0, 2) is None
    assert not store.is_done(0, 1) and not store.is_done(0, 2)
    warnings = [r for r in caplog.records if "damaged" in r.getMessage()]
    assert len(warnings) == 1 and "tile 1 of plane 0" in warnings[0].getMessage()  # said once
    reopened = _store(path)  # the flags went to disk: a later session encodes them again too
    assert reopened.status == "resumed" and reopened.done_mask(0).tolist() == [True, False, False]
    reopened.write(0, [1, 2], values[1:])
    assert np.array_equal(_store(path).read(0, 2), values[2].astype(np.float16))


@pytest.mark.slow
def test_a_damaged_cache_gives_the_same_mask_as_a_sound_one(tmp_path, lite_medsam, caplog):
    """Before: overwritten bytes decoded to other embeddings and the mask changed silently."""
    from napari_sam.io.samples import blobs
    from napari_sam.segmenter import Segmenter

    image, _ = blobs((96, 96), [(40, 40)], [14], seed=2)
    cache = tmp_path / "img.embeddings.zarr"
    seg = Segmenter(lite_medsam)
    seg.set_image(image, cache=cache)
    before = seg.predict(box=(24, 24, 56, 56)).masks[0]
    assert before.sum() > 100
    _damage(_chunk(cache, 0), "overwritten")
    again = Segmenter(lite_medsam)
    with caplog.at_level(logging.WARNING, logger="napari_sam.embeddings.store"):
        again.set_image(image, cache=cache, encode=False)
        assert again.store.status == "complete"
        after = again.predict(box=(24, 24, 56, 56)).masks[0]
    assert np.array_equal(after, before)
    assert again.store.damaged and any("damaged" in r.getMessage() for r in caplog.records)
    assert again.embeddings.encoded_count == 1  # the tile was encoded again, not served


# -- two writers -------------------------------------------------------------------------------------
WRITER = """
import os, sys, time, numpy as np
from napari_sam.embeddings.store import EmbeddingStore
path, name, value, started, other = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5]
store = EmbeddingStore.open(path, {"image": name}, planes=1, tiles=40, embedding_shape=(4, 8, 8))
for t in range(40):
    store.write(0, [t], np.full((1, 4, 8, 8), value, np.float32))
    if t == 0:  # both processes are writing from here on
        open(started, "w").close()
        deadline = time.monotonic() + 120
        while not os.path.exists(other) and time.monotonic() < deadline:
            time.sleep(0.01)
    time.sleep(0.01)
print(store.status, store.detached)
"""


def _writer(path, name, value, started, other):
    cmd = [sys.executable, "-c", WRITER, str(path), name, str(value), str(started), str(other)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path, proc, timeout=300):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.slow
def test_two_processes_rebuilding_one_cache_never_mix_embeddings(tmp_path):
    """Before: B rebuilt the folder for image Y while A kept writing image X's tiles into it."""
    path = tmp_path / "shared.zarr"
    a = _writer(path, "X", 1.0, tmp_path / "a.started", tmp_path / "b.started")
    _wait_for(tmp_path / "a.started", a)
    b = _writer(path, "Y", 2.0, tmp_path / "b.started", tmp_path / "a.started")  # rebuilds it under A
    out_b, err_b = b.communicate(timeout=300)
    out_a, err_a = a.communicate(timeout=300)
    assert a.returncode == 0 and b.returncode == 0, err_a + err_b
    assert out_a.split()[-1] == "True" and "rebuilt by another process" in err_a  # A stopped writing
    final = EmbeddingStore.open(path, {"image": "Y"}, planes=1, tiles=40, embedding_shape=(4, 8, 8))
    assert final.status == "complete"
    assert all((final.read(0, t) == 2).all() for t in range(40))  # only Y's embeddings
    assert not final.damaged
    assert not (tmp_path / ".shared.zarr.lock").exists()


HOLDER = """
import sys, time
from napari_sam.embeddings.folder_lock import FolderLock
lock = FolderLock(sys.argv[1])
lock.acquire()
open(sys.argv[2], "w").close()
time.sleep(600)
"""


def test_a_lock_held_by_a_live_process_is_waited_for_then_reported(tmp_path):
    path = tmp_path / "c.zarr"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(tmp_path / "held")])
    try:
        _wait_for(tmp_path / "held", holder)
        with (
            pytest.raises(ValueError, match=rf"being written by process {holder.pid} on "),
            FolderLock(path, timeout=0.3),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.skipif(os.name == "nt", reason="a dead holder is recognised by its pid on POSIX only")
def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    path = tmp_path / "c.zarr"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(tmp_path / "held")])
    _wait_for(tmp_path / "held", holder)
    os.kill(holder.pid, 9)  # kill -9 while holding the lock
    holder.wait()
    lock_file = tmp_path / ".c.zarr.lock"
    assert json.loads(lock_file.read_text())["pid"] == holder.pid  # left behind
    t0 = time.monotonic()
    store = _store(path)  # takes the stale lock over instead of waiting
    assert time.monotonic() - t0 < 30 and store.status == "new"
    assert not lock_file.exists()


def test_a_cache_under_a_file_is_one_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="cannot create the embedding cache"):
        _store(tmp_path / "file" / "c.zarr")
