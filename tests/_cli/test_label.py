"""``napari-sam label`` end to end: real TIFF files, the real default model, a corrupt file, a rerun."""

import json

import numpy as np
import pytest
import tifffile

from napari_sam._cli.main import main
from napari_sam.io.labels import read_labels
from napari_sam.io.samples import blobs

CENTRES = [(30, 30), (34, 90), (90, 40), (95, 98)]


def _stack(planes=2):
    imgs, truths = [], []
    for z in range(planes):
        img, truth = blobs((128, 128), [(r + 2 * z, c) for r, c in CENTRES], [11, 12, 10, 12], seed=z)
        imgs.append(img)
        truths.append(truth)
    return np.stack(imgs), np.stack(truths)


@pytest.fixture(scope="module")
def batch_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    stack, _ = _stack(2)
    tifffile.imwrite(d / "stack.tif", stack, metadata={"axes": "ZYX"})
    tifffile.imwrite(d / "single.tif", stack[0])
    (d / "corrupt.tif").write_bytes(b"II*\x00" + b"\x13" * 64)  # a TIFF header and garbage
    tifffile.imwrite(d / "hyper.tif", np.zeros((2, 2, 2, 8, 8), np.uint8))  # 5D: unsupported
    return d


def test_label_batch_continues_past_bad_files_and_reruns_skip(batch_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["label", str(batch_dir), "-o", str(out), "--device", "cpu", "--no-progress"])
    text = capsys.readouterr()
    assert code == 1  # two bad inputs
    assert "corrupt.tif" in text.out + text.err and "hyper.tif" in text.out + text.err
    assert "unsupported dimensions" in text.out + text.err
    names = sorted(p.name for p in out.iterdir())
    assert names == ["single.labels.json", "single_labels.tif", "stack.labels.json", "stack_labels.tif"]
    labels = read_labels(out / "stack_labels.tif")
    assert labels.shape == (2, 128, 128) and labels.dtype == np.uint8
    assert set(np.unique(labels[0])) == set(np.unique(labels[1]))  # linked through z: same ids on both planes
    summary = json.loads((out / "stack.labels.json").read_text())
    assert (
        summary["objects"] == 4
        and summary["model"] == "lite_medsam"
        and len(summary["checkpoint_sha256"]) == 64
    )
    assert summary["mode"] == "boxes" and "pred_iou_thresh" in summary["parameters"]

    # an interrupted run: the output exists but not its summary, and a temporary is left behind
    (out / "single.labels.json").unlink()
    (out / ".single_labels.tif.0123abcd.tmp").write_bytes(b"partial")
    before = (out / "stack_labels.tif").stat().st_mtime_ns
    code = main(
        [
            "label",
            str(batch_dir / "stack.tif"),
            str(batch_dir / "single.tif"),
            "-o",
            str(out),
            "--device",
            "cpu",
            "--no-progress",
        ]
    )
    text = capsys.readouterr().out
    assert code == 0
    assert "1 labelled, 1 already complete, 0 failed" in text
    assert (out / "stack_labels.tif").stat().st_mtime_ns == before
    assert sorted(p.name for p in out.iterdir()) == names


def test_prompts_mode_from_napari_csv(batch_dir, tmp_path):
    pts = tmp_path / "single.points.csv"
    pts.write_text("index,axis-0,axis-1\n0,30,30\n1,95,98\n")
    shapes = tmp_path / "single.shapes.csv"
    shapes.write_text(
        "index,shape-type,vertex-index,axis-0,axis-1\n"
        "0,rectangle,0,78,28\n0,rectangle,1,78,52\n0,rectangle,2,102,52\n0,rectangle,3,102,28\n"
    )
    out = tmp_path / "out"
    code = main(
        [
            "label",
            str(batch_dir / "single.tif"),
            "-o",
            str(out),
            "--mode",
            "prompts",
            "--prompts",
            str(tmp_path),
            "--format",
            "ome-zarr",
            "--device",
            "cpu",
            "--no-progress",
        ]
    )
    assert code == 0
    labels = read_labels(out / "single_labels.ome.zarr")
    assert labels.max() == 3
    assert labels[90, 40] > 0 and labels[30, 30] > 0 and labels[95, 98] > 0 and labels[34, 90] == 0


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert main(["label", str(tmp_path / "*.tif"), "-o", str(tmp_path / "o")]) == 2
    assert "matches no files" in capsys.readouterr().err
