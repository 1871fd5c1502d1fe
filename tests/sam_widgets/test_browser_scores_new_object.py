"""The notebook canvas in JupyterLab (Chromium, real model): each candidate's score is named ("est. IoU"
for LiteMedSAM) in the picker; a click on another nucleus commits the current mask and starts a new
object; a click whose mask dwarfs the committed objects says so. Screenshot:
tests/_artifacts/jupyter_scores.png (docs/images/ keeps the copy looked at).
"""

from __future__ import annotations

import numpy as np
import pytest
from labserver import ARTIFACTS, SAVE_LABELS_CELL_END, canvas_point, notebook_page, run_all_cells
from test_browser_jupyterlab import _read_labels

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


# three small objects committed from code (small boxes inside nuclei 88, 166 and 49), then the canvas
NOTEBOOK_CODE = (
    """\
import os
import numpy as np
from napari_sam.io.samples import nuclei
from sam_widgets import SamWidget

image, _ = nuclei()
w = SamWidget(image, model="lite_medsam", height=480, progress=False)
for box in [(360, 459, 368, 467), (333, 162, 341, 170), (417, 238, 425, 246)]:
    w.segment(box=box)
    w.commit()
"""
    + SAVE_LABELS_CELL_END
)


def _inner_point(truth: np.ndarray, label: int) -> tuple[float, float]:
    from scipy import ndimage as ndi

    dist = ndi.distance_transform_edt(np.pad(truth == label, 1))[1:-1, 1:-1]
    r, c = np.unravel_index(np.argmax(dist), dist.shape)
    return float(r), float(c)


def test_scores_and_a_far_click_in_jupyterlab(tmp_path):
    from napari_sam.io.samples import nuclei

    _, gt = nuclei()
    a, b = int(gt[212, 394]), int(gt[245, 447])  # two nuclei none of the boxes above committed
    with notebook_page(tmp_path, "widget.ipynb", [NOTEBOOK_CODE]) as (page, root, errors):
        run_all_cells(page)
        widget = page.wait_for_selector(".sam-widget[data-tiles-pending='0'][data-view]", timeout=180_000)
        page.locator(".sam-widget").scroll_into_view_if_needed()
        page.wait_for_function("() => document.querySelector('.sam-widget').dataset.objects === '3'")
        status = page.locator(".sam-widget .sam-status")

        def screen(row: float, col: float) -> tuple[float, float]:
            return canvas_point(page, widget, row, col)

        def click_and_wait(row: float, col: float, text: str) -> None:
            page.mouse.click(*screen(row, col))
            page.wait_for_function(
                "t => document.querySelector('.sam-widget .sam-status').textContent.includes(t)"
                " && !document.querySelector('.sam-widget').classList.contains('sam-busy')",
                arg=text,
                timeout=120_000,
            )

        # 1. a click on nucleus a: three candidates, each with its estimated IoU, named
        click_and_wait(*_inner_point(gt, a), "est. IoU")  # the final (zoomed) mask's status
        assert page.locator(".sam-widget .sam-score-kind").inner_text() == "est. IoU"
        buttons = page.locator(".sam-candidate")
        assert buttons.count() == 3
        values = [float(buttons.nth(i).inner_text().split(": ")[1]) for i in range(3)]
        assert max(values) > 0.4  # not LiteMedSAM's raw 0.18–0.26
        assert "est. IoU" in buttons.nth(0).get_attribute("title")
        assert "est. IoU" in status.inner_text()

        # 2. a click on nucleus b, far away: a is committed, b is a new object
        click_and_wait(*_inner_point(gt, b), "started a new object")
        assert status.inner_text().startswith(
            "Committed object 4; the click far from it started a new object (Ctrl+Z undoes)."
        )
        page.wait_for_function("() => document.querySelector('.sam-widget').dataset.objects === '4'")
        labels = _read_labels(root, 4, timeout=60)
        obj = labels == 4
        assert (obj & (gt == a)).sum() > 0.5 * obj.sum()  # object 4 is nucleus a

        # 3. a click whose mask is many times the committed objects' median (the three small ones, a and
        # b): b committed, the note suggests a box
        click_and_wait(*_inner_point(gt, int(gt[226, 193])), "draw a box around the object instead")
        page.wait_for_selector(".sam-widget[data-tiles-pending='0']")
        page.wait_for_timeout(500)
        page.locator(".sam-widget").screenshot(path=str(ARTIFACTS / "jupyter_scores.png"))
