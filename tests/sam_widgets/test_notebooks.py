"""The notebooks in notebooks/ run headless (nbclient, a real kernel and model) and are kept in git
without outputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
ALL = sorted(NOTEBOOKS.glob("*.ipynb"))


def test_there_are_notebooks():
    assert {p.name for p in ALL} >= {"quickstart.ipynb", "large_image.ipynb", "batch_stack.ipynb"}


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_notebook_is_stripped(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], (
                f"{path.name}: a cell keeps outputs; strip them before committing"
            )
            assert cell.get("execution_count") is None, f"{path.name}: a cell keeps its execution count"
    assert "widgets" not in nb["metadata"], f"{path.name}: saved widget state in the metadata; strip it"


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path):
    from nbclient import NotebookClient

    work = tmp_path / path.stem
    work.mkdir()
    shutil.copy(path, work / path.name)
    nb = nbformat.read(work / path.name, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(work)}}
    )
    try:
        client.execute()  # raises CellExecutionError with the failing cell's traceback
    finally:  # the executed notebook, to read (tests/_artifacts is not committed)
        artifacts = Path(__file__).resolve().parents[1] / "_artifacts"
        artifacts.mkdir(exist_ok=True)
        nbformat.write(nb, artifacts / f"executed_{path.name}")
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    mimes = {m for o in outputs for m in o.get("data", {})}
    assert "application/vnd.jupyter.widget-view+json" in mimes  # the widget was displayed
    assert "image/png" in mimes  # the overlay plot
