"""The core never imports Qt, napari or ipywidgets (a fresh interpreter proves it)."""

from __future__ import annotations

import json
import subprocess
import sys

CORE_MODULES = [
    "napari_sam",
    "napari_sam.segmenter",
    "napari_sam.models.loading",
    "napari_sam.image.normalize",
    "napari_sam._cli.main",
    "napari_sam.annotations",
    "napari_sam.io.samples",
]
FORBIDDEN = (
    "PyQt5",
    "PyQt6",
    "PySide2",
    "PySide6",
    "qtpy",
    "napari",
    "ipywidgets",
    "anywidget",
    "magicgui",
    "vispy",
)


def test_core_imports_no_gui_toolkit():
    code = (
        "import importlib, json, sys\n"
        f"for m in {CORE_MODULES!r}: importlib.import_module(m)\n"
        "import napari_sam as ns\n"
        "ns.Segmenter, ns.load_model\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = json.loads(out.strip().splitlines()[-1])
    bad = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert bad == [], f"the core pulled in GUI modules: {bad[:10]}"


def test_importing_the_package_does_not_import_torch():
    """napari's plugin discovery imports the package: that must stay cheap."""
    code = "import sys, napari_sam; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
