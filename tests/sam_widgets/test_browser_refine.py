"""Refining an existing segmentation in the notebook canvas, end to end: JupyterLab on localhost, the
widget in Chromium (Playwright), the real model. ``SamWidget(image, labels=damaged)`` with a nucleus cut
in half; E with the mouse over it makes its mask the current one, one click on its missing half corrects
it, Enter commits it under its id (the kernel's labels, written to ``labels.npy``, show it repaired),
Ctrl+Z restores it. Screenshot: tests/_artifacts/jupyter_refine_labels.png (the copy looked at is in
docs/images/)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from labserver import ARTIFACTS, SAVE_LABELS_CELL_END, canvas_point, notebook_page, run_all_cells

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

NUCLEUS = 1  # a mid-sized ground-truth nucleus near (455, 418)

NOTEBOOK_CODE = (
    """\
import os
import numpy as np
from napari_sam.io.samples import nuclei
from sam_widgets import SamWidget

image, truth = nuclei()
damaged = np.load("damaged.npy")
w = SamWidget(image, model="lite_medsam", labels=damaged, height=480, progress=False)
"""
    + SAVE_LABELS_CELL_END
)


def _iou(a, b) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _labels_when(folder: Path, ready, timeout: float = 60) -> np.ndarray:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = folder / "labels.npy"
        if path.exists():
            labels = np.load(path)
            if ready(labels):
                return labels
        time.sleep(0.3)
    raise AssertionError("the kernel's labels never changed as expected")


def test_e_click_enter_repairs_a_nucleus_in_jupyterlab(tmp_path):
    from napari_sam.io.samples import nuclei

    _, truth = nuclei()
    gt = truth == NUCLEUS
    cut = gt & (np.arange(truth.shape[1])[None, :] >= int(np.median(np.nonzero(gt)[1])))
    damaged = truth.copy()
    damaged[cut] = 0
    missing = np.argwhere(cut)
    click = missing[np.argmin(((missing - missing.mean(axis=0)) ** 2).sum(axis=1))]
    inside = np.argwhere(damaged == NUCLEUS).mean(axis=0)
    with notebook_page(tmp_path, "refine.ipynb", [NOTEBOOK_CODE]) as (page, root, errors):
        np.save(root / "damaged.npy", damaged)
        run_all_cells(page)
        widget = page.wait_for_selector(".sam-widget[data-tiles-pending='0'][data-view]", timeout=120_000)
        canvas = ".sam-widget canvas.sam-canvas"
        page.locator(".sam-widget").scroll_into_view_if_needed()
        assert np.array_equal(_labels_when(root, lambda lab: True), damaged)

        def screen(row: float, col: float) -> tuple[float, float]:
            return canvas_point(page, widget, row, col)

        # zoom in around the nucleus (wheel at the pointer)
        page.mouse.move(*screen(*inside))
        for _ in range(3):
            page.mouse.wheel(0, -240)
        page.wait_for_timeout(300)
        page.wait_for_selector(".sam-widget[data-tiles-pending='0']", timeout=60_000)

        # E with the mouse over the object: its mask becomes the current mask
        page.mouse.move(*screen(*inside))
        page.locator(canvas).focus()
        page.keyboard.press("e")
        page.wait_for_function(
            "() => Number(document.querySelector('.sam-widget').dataset.overlayPixels) > 0",
            timeout=60_000,
        )
        shown = int(widget.get_attribute("data-overlay-pixels"))
        assert shown == int((damaged == NUCLEUS).sum())

        # one click on the missing half: the corrected mask replaces it
        seq = int(widget.get_attribute("data-prediction-seq"))
        page.mouse.click(*screen(*click))
        page.wait_for_function(
            "s => Number(document.querySelector('.sam-widget').dataset.predictionSeq) > s",
            arg=seq,
            timeout=120_000,
        )
        page.wait_for_function(
            "n => Number(document.querySelector('.sam-widget').dataset.overlayPixels) > n",
            arg=shown,
            timeout=120_000,
        )
        page.wait_for_function(  # the final (zoom window) answer, after the quick one
            "() => document.querySelector('.sam-status').textContent.includes('Enter commits')",
            timeout=120_000,
        )
        page.wait_for_selector(".sam-widget[data-tiles-pending='0']")
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator(".sam-widget").screenshot(path=str(ARTIFACTS / "jupyter_refine_labels.png"))

        # Enter commits it under its id; Ctrl+Z restores the damaged nucleus
        page.keyboard.press("Enter")
        before = _iou(damaged == NUCLEUS, gt)
        labels = _labels_when(root, lambda lab: _iou(lab == NUCLEUS, gt) > before + 0.2)
        changed = labels != damaged
        assert ((labels[changed] == NUCLEUS) | (damaged[changed] == NUCLEUS)).all()
        page.keyboard.press("Control+z")
        _labels_when(root, lambda lab: np.array_equal(lab, damaged))
