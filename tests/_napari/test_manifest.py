"""The npe2 manifest validates and every python_name in it imports."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _manifest():
    from npe2 import PluginManifest

    return PluginManifest.from_file(ROOT / "napari.yaml")


def test_manifest_validates_and_ships_in_the_package():
    import napari_sam

    manifest = _manifest()
    assert manifest.name == "napari-sam"
    packaged = Path(napari_sam.__file__).parent / "napari.yaml"
    assert packaged.is_file() and not packaged.is_symlink()  # a symlink breaks on Windows checkouts
    assert packaged.read_bytes() == (ROOT / "napari.yaml").read_bytes(), (
        "src/napari_sam/napari.yaml differs from the top-level napari.yaml: edit one, copy it over the other"
    )
    kinds = {c.id for c in manifest.contributions.commands}
    assert {w.command for w in manifest.contributions.widgets} <= kinds
    assert len(manifest.contributions.widgets) == 4
    assert {w.command for w in manifest.contributions.writers} <= kinds
    assert {s.key for s in manifest.contributions.sample_data} == {"nuclei", "large_blobs"}


def test_npe2_validate_command():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", str(ROOT / "napari.yaml")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("command", [c.python_name for c in _manifest().contributions.commands])
def test_every_python_name_imports(command):
    from npe2.manifest.utils import import_python_name

    assert callable(import_python_name(command))
