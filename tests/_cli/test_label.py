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


# -- issue 14: one clear line per user error, the same from the API and the CLI ------------------------
def test_tiny_image_gets_the_same_answer_from_api_and_cli(tmp_path, capsys, lite_medsam):
    from napari_sam.segmenter import Segmenter

    tiny = np.array([[0, 10, 0], [10, 50, 10], [0, 10, 0]], np.uint8)
    tifffile.imwrite(tmp_path / "tiny.tif", tiny)
    with pytest.raises(ValueError) as api:
        Segmenter(lite_medsam).set_image(tiny)
    assert "the image is 3 × 3 pixels: too small to segment" in str(api.value)
    code = main(["label", str(tmp_path / "tiny.tif"), "-o", str(tmp_path / "out"), "--no-progress"])
    out = capsys.readouterr()
    assert code == 1 and str(api.value) in out.out + out.err and "Traceback" not in out.err


def test_output_that_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "a.tif").write_bytes(b"x")
    (tmp_path / "results").write_text("not a folder")
    code = main(["label", str(tmp_path / "a.tif"), "-o", str(tmp_path / "results"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "is a file, not a folder" in err


def test_a_bad_model_is_one_line_before_any_plane(batch_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["label", str(batch_dir / "single.tif"), "-o", str(out), "--model", "nope", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "unknown model 'nope'" in err
    assert not list(out.iterdir())


@pytest.mark.slow
def test_bad_prompts_are_named_by_row_and_do_not_fail_the_others(batch_dir, tmp_path, capsys, monkeypatch):
    """Before: an out-of-bounds point became an invented box, a NaN failed every prompt of the file."""
    from napari_sam.batch.run import worker_model
    from napari_sam.models.registry import get_spec

    worker_model.cache_clear()  # the model is resolved again, from this working directory
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lite_medsam").write_bytes(b"a file named like the default model is never loaded")
    prompts = tmp_path / "single.csv"
    prompts.write_text("index,axis-0,axis-1\n0,30,30\n1,nan,40\n2,99988,0.67\n3,95,98\n")
    code = main(
        ["label", str(batch_dir / "single.tif"), "-o", str(tmp_path / "out"), "--mode", "prompts"]
        + ["--prompts", str(prompts), "--device", "cpu", "--no-progress"]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "single.csv row 3: point (nan, 40) is not a number; skipped" in captured.err
    assert "single.csv row 4: point (row=99988, col=0.67) is outside the 128 × 128 image" in captured.err
    labels = read_labels(tmp_path / "out" / "single_labels.tif")
    assert labels[30, 30] > 0 and labels[95, 98] > 0 and labels.max() == 2
    summary = json.loads((tmp_path / "out" / "single.labels.json").read_text())
    assert len(summary["warnings"]) == 2
    assert summary["model"] == "lite_medsam"
    assert summary["checkpoint_sha256"] == get_spec("lite_medsam").checkpoint.sha256


def test_prompts_entirely_outside_the_image_are_a_value_error_in_the_api(lite_medsam):
    from napari_sam.segmenter import Segmenter

    seg = Segmenter(lite_medsam)
    seg.set_image(_stack(1)[0][0], encode=False)
    with pytest.raises(ValueError, match="outside the image"):
        seg.predict(box=(200, 200, 300, 300))
    with pytest.raises(ValueError, match="outside the image"):
        seg.predict(points=[(500, 5)])
