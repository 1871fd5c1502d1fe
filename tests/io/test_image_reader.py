"""Lazy reading: TIFF / BigTIFF / OME-TIFF and zarr through dask; a large TIFF is never read whole."""

from __future__ import annotations

import gc
import tracemalloc

import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr
from dask.callbacks import Callback

import napari_sam.image.normalize as image_mod
from napari_sam.io.images import as_dask, read_image
from napari_sam.io.samples import blobs
from napari_sam.segmenter import Segmenter


class ChunkReads(Callback):
    """Counts the chunks dask reads from a zarr-backed array (tasks named ``from-zarr…``)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def _pretask(self, key, dsk, state) -> None:
        name = key[0] if isinstance(key, tuple) else key
        if str(name).startswith("from-zarr"):
            self.count += 1


def test_tiled_bigtiff_is_a_dask_array_chunked_like_its_tiles(tmp_path):
    img = np.arange(600 * 520, dtype=np.uint16).reshape(600, 520)
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, img, tile=(128, 128), bigtiff=True, compression="zlib")
    x = read_image(path)
    assert isinstance(x, da.Array) and x.chunksize == (128, 128) and x.dtype == np.uint16
    np.testing.assert_array_equal(x[100:300, 50:400].compute(), img[100:300, 50:400])


def test_ome_tiff_pyramid_levels_and_stacks(tmp_path):
    img = np.random.default_rng(0).integers(0, 4000, (512, 384), dtype=np.uint16)
    path = tmp_path / "p.ome.tif"
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        tw.write(img, tile=(128, 128), subifds=1, metadata={"axes": "YX"})
        tw.write(img[::2, ::2], tile=(128, 128), subfiletype=1)
    assert read_image(path).shape == (512, 384)
    np.testing.assert_array_equal(read_image(path, level=1).compute(), img[::2, ::2])
    with pytest.raises(ValueError, match="level 2 does not exist"):
        read_image(path, level=2)
    stack = np.zeros((4, 64, 80), np.uint8)
    tifffile.imwrite(tmp_path / "s.tif", stack)
    assert read_image(tmp_path / "s.tif").shape == (4, 64, 80)


def test_zarr_arrays_groups_and_npy(tmp_path):
    img = np.arange(300 * 200, dtype=np.float32).reshape(300, 200)
    z = zarr.create_array(str(tmp_path / "a.zarr"), shape=img.shape, chunks=(100, 100), dtype=img.dtype)
    z[...] = img
    assert read_image(tmp_path / "a.zarr").chunksize == (100, 100)
    g = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    g.create_array("0", shape=img.shape, dtype=img.dtype)[...] = img
    g.create_array("1", shape=(150, 100), dtype=img.dtype)[...] = img[::2, ::2]
    g.attrs["multiscales"] = [{"datasets": [{"path": "0"}, {"path": "1"}]}]
    np.testing.assert_array_equal(read_image(tmp_path / "g.zarr", level=1).compute(), img[::2, ::2])
    np.save(tmp_path / "a.npy", img)
    np.testing.assert_array_equal(read_image(tmp_path / "a.npy").compute(), img)
    with pytest.raises(ValueError, match="no such image"):
        read_image(tmp_path / "missing.tif")


def test_as_dask_chunks_planes_one_by_one():
    x = as_dask(np.zeros((30, 2000, 1500, 3), np.uint8))
    assert x.chunksize == (1, 1024, 1024, 3)


def test_large_tiff_is_never_read_whole(lite_medsam, tmp_path, monkeypatch):
    """set_image on a lazily read 4096×2048 BigTIFF (16 MB) holds a few chunks at a time, and a prompt
    reads only the chunks under its window."""
    img, gt = blobs((4096, 2048), [(1000, 1000), (3000, 500)], [20, 25], seed=1)
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, img, tile=(256, 256), bigtiff=True, compression="zlib")
    del img
    monkeypatch.setattr(image_mod, "MAX_STAT_PIXELS", 2**16)  # a small strided sample for the scaling
    seg = Segmenter(lite_medsam)
    seg.set_image(read_image(path), cache=tmp_path / "warm.zarr", encode=False)  # imports, caches warm

    data = read_image(path)
    tracemalloc.start()
    try:
        with ChunkReads() as reads:
            seg.set_image(data, cache=tmp_path / "c.zarr", encode=False)  # scaling + fingerprint, no encoder
        _, peak = tracemalloc.get_traced_memory()
        labels = seg.annotations.labels.nbytes  # the (H, W) label image the annotations keep
        assert peak - labels < data.nbytes / 4
        assert (
            reads.count == 2 * 128
        )  # each 256² chunk read once for the scaling sample, once for the fingerprint

        seg.predict(box=(2980, 480, 3020, 520))  # first-call work (lazy imports, caches) off the measurement
        gc.collect()
        tracemalloc.reset_peak()
        with ChunkReads() as reads:
            res = seg.predict(box=(980, 980, 1020, 1020))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reads.count <= 4  # of 128 chunks
    assert peak - labels < data.nbytes / 8
    r, c = res.offsets[0]
    crop = res.crops[0][0]
    truth = gt[r : r + crop.shape[0], c : c + crop.shape[1]] == 1
    assert (crop & truth).sum() / (crop | truth).sum() > 0.8


# -- issue 14: damaged and hostile files -------------------------------------------------------------
def test_a_truncated_tiff_is_a_value_error_naming_the_file(tmp_path):
    full = tmp_path / "full.tif"
    tifffile.imwrite(full, np.random.default_rng(0).integers(0, 255, (3, 128, 128), dtype=np.uint8))
    data = full.read_bytes()
    for cut in (len(data) // 2, 100):
        cut_short = tmp_path / f"cut{cut}.tif"
        cut_short.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=rf"cut{cut}.tif (is truncated|is not a readable TIFF)"):
            read_image(cut_short)


def _bomb(path, side=100_000):
    """A 300-byte TIFF whose header claims a side × side uint8 image (its one tile is tiny)."""
    import struct

    tifffile.imwrite(path, np.zeros((64, 64), np.uint8), compression="zlib", tile=(64, 64), metadata=None)
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        for name in ("ImageWidth", "ImageLength"):
            fmt = {3: "<H", 4: "<I"}[int(tags[name].dtype)]
            struct.pack_into(fmt, data, tags[name].valueoffset, side)
    path.write_bytes(bytes(data))
    return path


def test_a_plane_header_claiming_100000_squared_is_refused_before_allocating(tmp_path):
    import tracemalloc

    from napari_sam.batch.run import BatchConfig, plan

    bomb = _bomb(tmp_path / "bomb.tif")
    assert bomb.stat().st_size < 1000 and read_image(bomb).shape == (100_000, 100_000)
    tracemalloc.start()
    try:
        (job,) = plan([bomb], BatchConfig(tmp_path / "out"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "bomb.tif: a plane of 100000 × 100000 pixels (10.0 Gpx, 10.0 GB in memory)" in job.error
    assert peak < 50e6  # nothing near the claimed 10 GB was allocated (nor sampled)
