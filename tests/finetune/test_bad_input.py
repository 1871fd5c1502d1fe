"""Bad input gets one clear message before any model is loaded or trained, and leaves nothing behind."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_sam._cli.main import main
from napari_sam.finetune import finetune
from napari_sam.finetune.data import MIN_OBJECTS, find_objects, training_planes
from napari_sam.io.samples import blobs

CENTRES = [(20 + 40 * (i // 3), 20 + 40 * (i % 3)) for i in range(9)]


@pytest.fixture
def blob_image():
    return blobs((128, 128), CENTRES, [10] * len(CENTRES), seed=0)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda img, lab: (img, lab[:, :100]), "labels 0 have shape"),
        (lambda img, lab: (img, lab.astype(np.float32)), "floating point"),
        (lambda img, lab: (img, lab > 0), "boolean mask"),
        (lambda img, lab: (img, np.zeros_like(lab)), "no annotated object"),
        (lambda img, lab: (img, np.where(lab <= 3, lab, 0)), f"needs at least {MIN_OBJECTS}"),
        (lambda img, lab: ([img, img], [lab]), "2 image"),
        (
            lambda img, lab: (np.dstack([img] * 3), np.dstack([img] * 3)),
            r"shape \(128, 128, 3\), the shape of an RGB",
        ),
    ],
)
def test_bad_data_is_refused_before_training(blob_image, make, message):
    img, lab = make(*blob_image)
    with pytest.raises(ValueError, match=message):
        finetune(img, lab, minutes=0.1)


def test_too_few_objects_says_how_many_are_needed(blob_image):
    img, lab = blob_image
    with pytest.raises(ValueError, match=r"only 3 annotated object\(s\).*at least 8.*Label 5 more"):
        finetune(img, np.where(lab <= 3, lab, 0))


def test_unsupported_base_and_bad_output_folders(blob_image, tmp_path):
    img, lab = blob_image
    with pytest.raises(ValueError, match="cannot fine-tune 'sam_vit_z'"):
        finetune(img, lab, base="sam_vit_z")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        finetune(img, lab, out=a_file)
    with pytest.raises(ValueError, match="not writable"):
        finetune(img, lab, out="/proc/napari-sam-finetune-test")  # no folder can be made there
    not_a_model = tmp_path / "weights.pt"
    not_a_model.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="refusing checkpoint|not a torch checkpoint"):
        finetune(img, lab, base=not_a_model, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing partial left


def test_stack_planes_without_labels_are_skipped(blob_image):
    img, lab = blob_image
    stack = np.stack([img, img, img])
    labels = np.stack([lab, np.zeros_like(lab), lab[:, ::-1]])
    planes, inputs = training_planes(stack, labels)
    assert [p.plane for p in planes] == [0, 2]
    assert inputs[0]["annotated_planes"] == [0, 2] and inputs[0]["is_stack"]
    assert len(find_objects(planes)) == 2 * len(CENTRES)
    assert planes[0].image.shape == (128, 128, 1)


def test_cli_bad_input_one_message_nothing_left(blob_image, tmp_path, capsys):
    img, lab = blob_image
    tifffile.imwrite(tmp_path / "img.tif", img)
    tifffile.imwrite(tmp_path / "lab.tif", lab[:64])
    out = tmp_path / "out"
    code = main(
        ["finetune", str(tmp_path / "img.tif"), "--labels", str(tmp_path / "lab.tif"), "-o", str(out)]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("napari-sam finetune: error: labels 0 have shape (64, 128)")
    assert not out.exists()
    tifffile.imwrite(tmp_path / "lab.tif", lab.astype(np.float32))
    code = main(
        ["finetune", str(tmp_path / "img.tif"), "--labels", str(tmp_path / "lab.tif"), "-o", str(out)]
    )
    assert code == 2 and "floating point" in capsys.readouterr().err
    assert not out.exists()
