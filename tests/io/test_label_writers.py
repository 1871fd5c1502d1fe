import json

import numpy as np
import pytest
import tifffile

from napari_sam.io.labels import read_labels, smallest_label_dtype, stale_temporaries, write_labels


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
        open(path, "wb").write(b"II*\x00partial")
        raise OSError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", broken)
    with pytest.raises(OSError, match="disk full"):
        write_labels(tmp_path / "bad_labels.tif", np.ones((4, 4), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        write_labels(tmp_path / "bad_labels.tif", np.zeros((2, 2, 2, 2), np.uint8))
    assert list(tmp_path.iterdir()) == []
