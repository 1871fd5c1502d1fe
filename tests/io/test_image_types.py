"""One list of accepted image files, used by batch runs (CLI) and the napari batch widget."""

from pathlib import Path

from napari_sam.batch.plan import expand_inputs, output_stem
from napari_sam.io.images import IMAGE_SUFFIXES, file_dialog_filter, image_stem, is_image_path


def test_the_one_list_decides_inputs_stems_and_the_dialog(tmp_path):
    for name in ("a.ome.tif", "b.TIFF", "c.btf", "d.npy", "e.png", ".hidden.tif", "f.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "g.zarr").mkdir()
    found = [p.name for p in expand_inputs([tmp_path])]
    assert found == ["a.ome.tif", "b.TIFF", "c.btf", "d.npy", "g.zarr"]
    assert [is_image_path(tmp_path / n) for n in found] == [True] * 5
    assert [output_stem(Path(n)) for n in found] == ["a", "b", "c", "d", "g"]
    assert image_stem("x.ome.zarr/") == "x" and image_stem("y.png") == "y"
    dialog = file_dialog_filter()
    for suffix in IMAGE_SUFFIXES:  # every accepted ending can be picked in the widget's dialog
        assert f"*{suffix[suffix.rindex('.') :]}" in dialog
