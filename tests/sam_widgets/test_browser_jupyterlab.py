"""The feature end to end: JupyterLab on localhost, the widget in Chromium (Playwright), real model.

Click on a nucleus → the mask overlay appears in the page; drag a box around it and commit → the
kernel's ``w.labels`` changed (the notebook writes them to ``labels.npy`` whenever they change).
A screenshot goes to ``tests/_artifacts/jupyter_widget.png``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from labserver import ARTIFACTS, SAVE_LABELS_CELL_END, canvas_point, notebook_page, run_all_cells

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


NOTEBOOK_CODE = (
    """\
import os
import numpy as np
from napari_sam.io.samples import nuclei
from sam_widgets import SamWidget

image, _ = nuclei()
w = SamWidget(image, model="lite_medsam", height=480, progress=False)
"""
    + SAVE_LABELS_CELL_END
)


def _nuclei(gt: np.ndarray, n: int = 2) -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """The ``n`` largest nuclei away from the border: (mask, bbox (min_row, min_col, max_row, max_col))."""
    from napari_sam.geometry.coords import mask_bbox

    found = []
    for i in np.unique(gt)[1:]:
        m = gt == i
        r0, c0, r1, c1 = mask_bbox(m)
        if min(r0, c0) >= 40 and max(r1, c1) <= 470:
            found.append((m, (r0, c0, r1, c1)))
    return sorted(found, key=lambda t: -t[0].sum())[:n]


def drag_box(page, screen, widget, box, timeout: float = 120_000) -> None:
    """Drag from one corner of ``box`` (min_row, min_col, max_row, max_col) to the other; await the mask."""
    seq = int(widget.get_attribute("data-prediction-seq"))
    b0, b1, b2, b3 = box
    page.mouse.move(*screen(b0, b1))
    page.mouse.down()
    for f in np.linspace(0, 1, 6)[1:]:
        page.mouse.move(*screen(b0 + f * (b2 - b0), b1 + f * (b3 - b1)))
    page.mouse.up()
    page.wait_for_function(
        f"() => Number(document.querySelector('.sam-widget').dataset.predictionSeq) > {seq}", timeout=timeout
    )


def _cyan_pixels(page, selector: str) -> int:
    """Pixels of the widget's canvas tinted by the mask colour (blue well above red)."""
    return page.eval_on_selector(
        selector,
        """c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 2] - d[i] > 60 && d[i + 1] - d[i] > 40) n++;
        return n;
    }""",
    )


def _read_labels(folder: Path, min_objects: int, timeout: float) -> np.ndarray:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = folder / "labels.npy"
        if path.exists():
            labels = np.load(path)
            if len(np.unique(labels)) - 1 >= min_objects:
                return labels
        time.sleep(0.5)
    raise AssertionError(f"the kernel's labels never reached {min_objects} object(s)")


def test_click_and_commit_in_jupyterlab(tmp_path):
    from napari_sam.io.samples import nuclei

    _, gt = nuclei()
    (target, (r0, c0, r1, c1)), (_, (q0, p0, q1, p1)) = _nuclei(gt)
    second_box = (q0 - 3, p0 - 3, q1 + 3, p1 + 3)
    centre = np.argwhere(target).mean(axis=0)

    playwright = pytest.importorskip("playwright.sync_api")
    with notebook_page(tmp_path, "widget.ipynb", [NOTEBOOK_CODE], viewport=(1280, 1000)) as (
        page,
        root,
        errors,
    ):
        run_all_cells(page)
        widget = page.wait_for_selector(".sam-widget[data-tiles-pending='0'][data-view]", timeout=120_000)
        canvas = ".sam-widget canvas.sam-canvas"
        page.locator(".sam-widget").scroll_into_view_if_needed()
        page.wait_for_function("() => document.querySelector('.sam-widget').dataset.objects === '0'")
        assert _cyan_pixels(page, canvas) == 0

        def screen(row: float, col: float) -> tuple[float, float]:
            return canvas_point(page, widget, row, col)

        # 1. click on the nucleus: a positive point, the mask overlay appears
        page.mouse.click(*screen(*centre))
        page.wait_for_function(
            "() => Number(document.querySelector('.sam-widget').dataset.overlayPixels) > 0",
            timeout=120_000,
        )
        page.wait_for_timeout(300)  # one animation frame
        assert _cyan_pixels(page, canvas) > 0, "the mask overlay is not drawn on the canvas"

        # 2. drag a box around it (the point stays): a good mask; commit with the toolbar button
        drag_box(page, screen, widget, (r0 - 3, c0 - 3, r1 + 3, c1 + 3))
        page.get_by_role("button", name="Commit").click()
        labels = _read_labels(root, 1, timeout=60)
        page.wait_for_function("() => document.querySelector('.sam-widget').dataset.objects === '1'")

        # 3. box a second nucleus and pick another of the three candidate masks (kept uncommitted)
        drag_box(page, screen, widget, second_box)
        buttons = page.locator(".sam-candidate")
        assert buttons.count() == 3
        active = [i for i in range(3) if "active" in (buttons.nth(i).get_attribute("class") or "")]
        other = (active[0] + 1) % 3 if active else 0
        buttons.nth(other).click()
        assert "active" in buttons.nth(other).get_attribute("class")
        page.wait_for_selector(".sam-widget[data-tiles-pending='0']")
        page.wait_for_timeout(500)
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator(".sam-widget").screenshot(path=str(ARTIFACTS / "jupyter_widget.png"))
        page.screenshot(path=str(ARTIFACTS / "jupyter_lab_page.png"))

        # 4. the contrast sliders: tiles come back with the new limits, the image gets brighter
        def mean_gray() -> float:
            return page.eval_on_selector(
                canvas,
                """c => {
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let s = 0;
                for (let i = 0; i < d.length; i += 4) s += d[i + 1];
                return s / (d.length / 4);
            }""",
            )

        dark = mean_gray()
        page.eval_on_selector(
            ".sam-range >> nth=1",
            """r => {
            r.value = String(Number(r.min) + (Number(r.max) - Number(r.min)) * 0.25);
            r.dispatchEvent(new Event('input', {bubbles: true}));
        }""",
        )
        # the tiles come back from the kernel with the new limits (polled: a loaded machine is slow)
        brighter = """dark => {
            const c = document.querySelector('.sam-widget canvas.sam-canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let s = 0;
            for (let i = 0; i < d.length; i += 4) s += d[i + 1];
            return s / (d.length / 4) > dark + 5;
        }"""
        try:
            page.wait_for_function(brighter, arg=dark, timeout=60_000, polling=250)
        except playwright.TimeoutError:
            pytest.fail(f"lowering the upper contrast limit did not brighten the image ({mean_gray():.1f})")
        page.wait_for_selector(".sam-widget[data-tiles-pending='0']", timeout=60_000)

        # 5. zoom out with the wheel: the canvas asks for coarser tiles (level 1); zoom in; pan
        import json

        def view() -> dict:
            return json.loads(widget.get_attribute("data-view"))

        before = view()
        page.mouse.move(*screen(256, 256))
        for _ in range(4):
            page.mouse.wheel(0, 240)
        page.wait_for_function(
            "() => JSON.parse(document.querySelector('.sam-widget').dataset.view).level === 1"
        )
        page.wait_for_selector(".sam-widget[data-tiles-pending='0']", timeout=60_000)
        for _ in range(12):
            page.mouse.wheel(0, -240)
        page.wait_for_timeout(300)
        zoomed = view()
        assert zoomed["scale"] > 2 * before["scale"] and zoomed["level"] == 0
        x, y = screen(256, 256)
        page.mouse.move(x, y)
        page.mouse.down(button="right")
        page.mouse.move(x + 120, y + 60, steps=4)
        page.mouse.up(button="right")
        page.wait_for_timeout(300)
        panned = view()
        assert abs(panned["tx"] - zoomed["tx"] - 120) < 2 and abs(panned["ty"] - zoomed["ty"] - 60) < 2
        page.wait_for_selector(".sam-widget[data-tiles-pending='0']", timeout=60_000)
    obj = labels == labels[target].max()
    iou = (obj & target).sum() / (obj | target).sum()
    assert labels[target].any(), "the committed object does not cover the nucleus"
    assert iou > 0.5, f"committed object IoU with the nucleus {iou:.2f}"
