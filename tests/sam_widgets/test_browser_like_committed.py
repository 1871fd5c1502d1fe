"""Segment the rest "like the committed objects" from a notebook cell, reviewed in the canvas: JupyterLab
in Chromium (Playwright), the real LiteMedSAM on a 160×160 crop of the stardist nuclei.

Three nuclei are committed from code; the next cell runs ``w.find_like_committed()``. While it runs the
canvas shows the job ("finding objects like the committed ones …", with its percentage); then the
objects found are outlined in the review colour over the image (read from the canvas's pixels along
their borders), the committed ones keep their own colours, and **Keep N found** makes them committed
objects (the kernel's labels grow). Screenshot: tests/_artifacts/jupyter_like_committed.png
(docs/images/ keeps the copy looked at).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from labserver import ARTIFACTS, notebook_page, run_all_cells
from test_browser_jupyterlab import _read_labels

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

COMMITTED = 3
CELLS = [
    """\
import os
import numpy as np
from napari_sam.io.samples import nuclei
from sam_widgets import SamWidget

image, truth = nuclei()
image, truth = image[:160, :160], truth[:160, :160]
w = SamWidget(image, model="lite_medsam", height=420, progress=False)
border = set(np.unique(truth[[0, -1]])) | set(np.unique(truth[:, [0, -1]]))
for k in [v for v in np.unique(truth) if v and v not in border][:3]:
    w.segmenter.commit(truth == k)  # three whole nuclei, as if clicked

def save(name, array):
    with open(name + ".tmp", "wb") as f:
        np.save(f, array)
    os.replace(name + ".tmp", name)

w.observe(lambda change: save("labels.npy", w.labels), names="labels_version")
save("labels.npy", w.labels)
w""",
    """\
found = w.find_like_committed()  # the rest of the image, like the committed nuclei: outlined for review
save("found.npy", found)""",
]

# What the canvas's waiting box said, polled every 50 ms from the page (the kernel is busy meanwhile).
RECORD = """() => {
  window.__waiting = [];
  setInterval(() => {
    const box = document.querySelector('.sam-widget .sam-waiting');
    if (!box || box.style.display === 'none') return;
    const seen = box.innerText;
    if (window.__waiting[window.__waiting.length - 1] !== seen) window.__waiting.push(seen);
  }, 50);
}"""

# The canvas's RGB at image pixels [[row, col], ...] (the centre of each pixel on the screen).
SAMPLE = """points => {
  const root = document.querySelector('.sam-widget'), c = root.querySelector('canvas.sam-canvas');
  const v = JSON.parse(root.dataset.view), dpr = window.devicePixelRatio || 1;
  const ctx = c.getContext('2d');
  return points.map(([r, col]) => {
    const x = Math.floor((v.tx + (col + 0.5) * v.scale) * dpr);
    const y = Math.floor((v.ty + (r + 0.5) * v.scale) * dpr);
    return Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3));
  });
}"""

REVIEW_RGB = np.array([255, 214, 0])  # static/tiles.js FOUND_RGB


def _borders(labels: np.ndarray) -> list[list[int]]:
    """Pixels of an object with a 4-neighbour inside the image that is not of it (as tiles.js draws)."""
    edge = np.zeros(labels.shape, dtype=bool)
    edge[1:] |= labels[1:] != labels[:-1]
    edge[:-1] |= labels[:-1] != labels[1:]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    return np.argwhere(edge & (labels > 0)).tolist()


def _review_fraction(page, points: list[list[int]]) -> float:
    rgb = np.array(page.evaluate(SAMPLE, points))
    return float((np.abs(rgb - REVIEW_RGB).max(axis=1) < 40).mean())


def _wait_file(path: Path, timeout: float) -> np.ndarray:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"the notebook never wrote {path.name}")
        time.sleep(0.5)
    return np.load(path)


def test_find_like_committed_reviewed_in_the_canvas(tmp_path):
    with notebook_page(tmp_path, "like_committed.ipynb", CELLS) as (page, root, errors):
        page.evaluate(RECORD)
        run_all_cells(page)
        found = _wait_file(root / "found.npy", timeout=240)
        n = int(found.max())
        assert n >= 3
        widget = page.wait_for_selector(
            f".sam-widget[data-found='{n}'][data-tiles-pending='0'][data-waiting='0']", timeout=60_000
        )
        page.locator(".sam-widget").scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        status = page.locator(".sam-widget .sam-status").inner_text()
        assert status.startswith(f"{n} objects found (outlined)"), status
        assert widget.get_attribute("data-objects") == str(COMMITTED)
        seen = page.evaluate("window.__waiting")
        assert any("finding objects like the committed ones" in s for s in seen), seen

        # the found objects' borders are drawn in the review colour; the committed ones' are not
        committed = _read_labels(root, COMMITTED, timeout=30)
        assert _review_fraction(page, _borders(found)) > 0.8
        assert _review_fraction(page, _borders(committed)) < 0.1
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator(".sam-widget").screenshot(path=str(ARTIFACTS / "jupyter_like_committed.png"))

        # Keep N found: committed in the kernel (its labels grow), the review outline goes
        page.get_by_role("button", name=f"Keep {n} found").click()
        page.wait_for_selector(f".sam-widget[data-objects='{COMMITTED + n}'][data-found='0']", timeout=60_000)
        labels = _read_labels(root, COMMITTED + n, timeout=60)
        assert np.array_equal(labels > 0, (committed > 0) | (found > 0))
        page.wait_for_selector(".sam-widget[data-tiles-pending='0']", timeout=60_000)
        page.wait_for_timeout(300)
        assert _review_fraction(page, _borders(found)) < 0.1
        assert page.locator(".sam-widget .sam-status").inner_text().startswith(f"added {n} objects")
        assert not errors, errors
