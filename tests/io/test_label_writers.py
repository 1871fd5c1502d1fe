import json

import numpy as np
import pytest
import tifffile

from napari_sam.io.atomic import stale_temporaries
from napari_sam.io.labels import read_labels, smallest_label_dtype, write_labels, write_labels_ome_zarr


def test_smallest_dtype():
    assert smallest_label_dtype(np.array([0, 255])) == np.uint8
    assert smallest_label_dtype(np.array([0, 256])) == np.uint16
    assert smallest_label_dtype(np.array([70000])) == np.uint32
    with pytest.raises(ValueError, match="≥ 0"):
        smallest_label_dtype(np.array([-1]))


@pytest.mark.parametrize("fmt", ["tiff", "ome-zarr"])
def test_roundtrip_is_atomic_and_compact(tmp_path, fmt):
    labels = np.zeros((2, 40, 50), np.int64)
    labels[0, 5:10, 5:10] = 300
    target = tmp_path / ("x_labels.tif" if fmt == "tiff" else "x_labels.ome.zarr")
    write_labels(target, labels, fmt)
    back = read_labels(target)
    assert back.dtype == np.uint16 and np.array_equal(back, labels)
    assert not stale_temporaries(target)
    if fmt == "tiff":
        with tifffile.TiffFile(target) as tif:
            assert tif.pages[0].compression != 1  # compressed
    else:
        attrs = json.loads((target / ".zattrs").read_text())
        assert attrs["multiscales"][0]["axes"][0]["name"] == "z" and "image-label" in attrs


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def broken(path, *args, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"II*\x00partial")
        raise OSError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", broken)
    with pytest.raises(OSError, match="disk full"):
        write_labels(tmp_path / "bad_labels.tif", np.ones((4, 4), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        write_labels(tmp_path / "bad_labels.tif", np.zeros((2,) * 6, np.uint8))
    with pytest.raises(ValueError, match="integer ids"):
        write_labels(tmp_path / "bad_labels.tif", np.zeros((4, 4), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rewrite_keeps_the_old_output(tmp_path, monkeypatch):
    target = tmp_path / "x_labels.tif"
    write_labels(target, np.full((4, 4), 3, np.uint8))

    def broken(path, *args, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"II*\x00partial")
        raise OSError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", broken)
    with pytest.raises(OSError, match="disk full"):
        write_labels(target, np.ones((4, 4), np.uint8))
    assert (read_labels(target) == 3).all()
    assert [p.name for p in tmp_path.iterdir()] == ["x_labels.tif"]


def test_ome_zarr_streams_dask_labels_with_their_transforms(tmp_path):
    da = pytest.importorskip("dask.array")
    labels = np.zeros((3, 64, 48), np.int64)
    labels[1, 10:20, 5:30] = 70000
    lazy = da.from_array(labels, chunks=(1, 32, 48))
    target = write_labels_ome_zarr(
        tmp_path / "x.ome.zarr", lazy, scale=(2.0, 0.5, 0.5), translate=(0, 1, 2), name="cells"
    )
    back = read_labels(target)
    assert back.dtype == np.uint32 and np.array_equal(back, labels)
    ms = json.loads((target / ".zattrs").read_text())["multiscales"][0]
    assert ms["name"] == "cells"
    assert ms["datasets"][0]["coordinateTransformations"] == [
        {"type": "scale", "scale": [2.0, 0.5, 0.5]},
        {"type": "translation", "translation": [0.0, 1.0, 2.0]},
    ]
    # rewriting a folder replaces it whole
    write_labels_ome_zarr(target, labels[:1])
    assert read_labels(target).shape == (1, 64, 48)
    assert [p.name for p in tmp_path.iterdir()] == ["x.ome.zarr"]
