"""Writers (TIFF, OME-Zarr), the annotation-folder reader and the sample data of the plugin."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_sam._napari._io import get_reader, write_labels_ome_zarr, write_labels_tiff


def _labels():
    data = np.zeros((2, 32, 40), np.int32)
    data[0, 3:9, 4:12] = 1
    data[1, 10:20, 5:9] = 7
    return data


def test_tiff_round_trip(tmp_path):
    import tifffile

    path = str(tmp_path / "labels.tif")
    assert write_labels_tiff(path, _labels(), {"name": "objects"}) == [path]
    assert np.array_equal(tifffile.imread(path), _labels())


def test_ome_zarr_round_trip_with_scale(tmp_path):
    import zarr

    path = str(tmp_path / "labels.ome.zarr")
    write_labels_ome_zarr(
        path, _labels(), {"name": "objects", "scale": (2.0, 0.5, 0.5), "translate": (0, 1, 2)}
    )
    root = zarr.open_group(path, mode="r")
    assert np.array_equal(root["0"][...], _labels())
    ms = root.attrs["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["z", "y", "x"]
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [2.0, 0.5, 0.5]
    assert ms["datasets"][0]["coordinateTransformations"][1]["translation"] == [0.0, 1.0, 2.0]


def test_writers_refuse_float_labels(tmp_path):
    with pytest.raises(ValueError, match="integer ids"):
        write_labels_tiff(str(tmp_path / "x.tif"), np.zeros((4, 4), np.float32), {})
    with pytest.raises(ValueError, match="integer ids"):
        write_labels_ome_zarr(str(tmp_path / "x.zarr"), np.zeros((4, 4), np.float32), {})


def test_reader_opens_annotation_folders_only(tmp_path):
    from napari_sam.annotations import Annotations

    ann = Annotations((32, 40))
    mask = np.zeros((32, 40), bool)
    mask[5:10, 6:15] = True
    ann.commit(mask, score=0.9, prompts={"boxes": [[5, 6, 9, 14]]})
    folder = ann.save(tmp_path / "session")
    reader = get_reader(str(folder))
    assert reader is not None and get_reader(str(folder / "objects.json")) is not None
    [(data, meta, kind)] = reader(str(folder))
    assert kind == "labels" and np.array_equal(data > 0, mask)
    assert list(meta["features"]["index"]) == [1] and meta["features"]["score"][0] == pytest.approx(0.9)
    assert get_reader(str(tmp_path)) is None
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "objects.json").write_text(json.dumps({"format": "something else"}))
    assert get_reader(str(tmp_path / "other")) is None


def test_sample_data():
    from napari_sam._napari._sample_data import large_blobs_sample, nuclei_sample

    (image, meta, kind), (truth, _, truth_kind) = nuclei_sample()
    assert kind == "image" and image.shape == (512, 512) and truth_kind == "labels" and truth.max() > 100
    (big, _, _), (big_truth, _, _) = large_blobs_sample(side=512, spacing=64)
    assert big.shape == (512, 512) and big.dtype == np.uint16 and len(np.unique(big_truth)) - 1 == 49


def test_writers_are_the_cores_atomic_smallest_dtype_writers(tmp_path, monkeypatch):
    import tifffile

    from napari_sam.io.atomic import stale_temporaries
    from napari_sam.io.labels import read_labels

    tif = tmp_path / "labels.tif"
    write_labels_tiff(str(tif), _labels(), {})
    assert tifffile.imread(tif).dtype == np.uint8  # int32 layer data, stored in the smallest dtype
    zarr_path = tmp_path / "labels.ome.zarr"
    write_labels_ome_zarr(str(zarr_path), _labels() * 1000, {"name": "objects"})
    assert read_labels(zarr_path).dtype == np.uint16

    def broken(path, *args, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"II*\x00partial")
        raise OSError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", broken)
    with pytest.raises(OSError, match="disk full"):
        write_labels_tiff(str(tif), _labels() * 2, {})
    assert np.array_equal(read_labels(tif), _labels())  # the old file, whole
    assert not stale_temporaries(tif)
