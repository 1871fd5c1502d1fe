"""``napari-sam embed INPUT -o CACHE.zarr``: builds, then reopens without encoding."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_sam._cli.embed import parse_planes
from napari_sam._cli.main import main
from napari_sam.io.samples import blobs


def test_embed_builds_then_reopens_a_finished_cache(tmp_path, capsys):
    img, _ = blobs((200, 240), [(100, 120)], [20], seed=2)
    stack = np.stack([img, img])
    path = tmp_path / "s.tif"
    tifffile.imwrite(path, stack, tile=(128, 128))
    out = tmp_path / "s.zarr"
    assert (
        main(
            [
                "embed",
                str(path),
                "-o",
                str(out),
                "--stack-axis",
                "0",
                "--planes",
                "1",
                "--quiet",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "new" in err and "encoded 1 tile(s)" in err and "1/2 done" in err
    assert main(["embed", str(path), "-o", str(out), "--stack-axis", "0", "--quiet", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "resumed" in err and "encoded 1 tile(s)" in err and "2/2 done" in err
    assert main(["embed", str(path), "-o", str(out), "--stack-axis", "0", "--quiet", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "complete" in err and "encoded 0 tile(s)" in err


def test_embed_user_errors_are_one_line(tmp_path, capsys):
    assert main(["embed", str(tmp_path / "missing.tif"), "-o", str(tmp_path / "c.zarr")]) == 2
    assert "no such image" in capsys.readouterr().err


@pytest.mark.parametrize("text, planes", [("0-3,7", [0, 1, 2, 3, 7]), (None, None), ("5", [5])])
def test_parse_planes(text, planes):
    assert parse_planes(text) == planes
