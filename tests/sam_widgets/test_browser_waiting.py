"""The notebook canvas says "waiting for the kernel…" while the kernel is busy, and shows the kernel's
embedding progress: JupyterLab in Chromium (Playwright), the real model.

The notebook displays the widget, then keeps the kernel busy (``time.sleep``): the widget's tile
requests wait, so the canvas is blank and the message sits in the middle of it. The next cell gives the
widget a stack and embeds its planes: the message shows the percentage as the planes are embedded.
When the kernel is free the tiles come and the message goes. A screenshot goes to
``tests/_artifacts/jupyter_waiting.png`` (docs/images/ has a copy).
"""

from __future__ import annotations

import re

import pytest
from labserver import ARTIFACTS, notebook_page, run_all_cells

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

CELLS = [
    """\
import time
import numpy as np
from napari_sam.io.samples import nuclei
from sam_widgets import SamWidget

image, _ = nuclei()
w = SamWidget(image, model="lite_medsam", height=360, progress=False)
w""",
    "time.sleep(15)  # the kernel is busy: the canvas waits for its tiles",
    """\
stack = np.stack([image, image[::-1], image[:, ::-1], image[::-1, ::-1]])
w.set_image(stack, stack_axis=0)  # a new image: the canvas waits for its tiles
w.segmenter.encode_planes()  # the kernel embeds the other planes: the canvas shows how far""",
]

# Everything the message showed, polled every 50 ms from the page itself (the kernel's progress moves fast).
RECORD = """() => {
  window.__waiting = [];
  setInterval(() => {
    const root = document.querySelector('.sam-widget');
    const box = root && root.querySelector('.sam-waiting');
    if (!box || root.dataset.waiting !== '1') return;
    const seen = `${box.classList.contains('sam-waiting-blank') ? 'blank' : 'banner'}|${box.innerText}`;
    if (window.__waiting[window.__waiting.length - 1] !== seen) window.__waiting.push(seen);
  }, 50);
}"""


def test_canvas_waits_for_the_busy_kernel(tmp_path):
    with notebook_page(tmp_path, "waiting.ipynb", CELLS) as (page, _root, errors):
        page.evaluate(RECORD)
        run_all_cells(page)

        # the widget is shown while the kernel sleeps: its canvas is blank and says why
        page.wait_for_selector(".sam-widget[data-waiting='1']", timeout=150_000)
        message = page.locator(".sam-widget .sam-waiting")
        page.locator(".sam-widget").scroll_into_view_if_needed()
        assert message.is_visible()
        assert message.inner_text().startswith("waiting for the kernel…")
        assert "sam-waiting-blank" in message.get_attribute("class")
        assert page.locator(".sam-widget").get_attribute("data-tiles-pending") != "0"
        page.wait_for_timeout(300)
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator(".sam-widget").screenshot(path=str(ARTIFACTS / "jupyter_waiting.png"))

        # the kernel embeds the larger image; then it answers the tiles and the message goes
        ready = ".sam-widget[data-waiting='0'][data-tiles-pending='0']"
        page.wait_for_selector(ready, timeout=150_000)
        assert not message.is_visible()
        seen = page.evaluate("window.__waiting")
        assert any(s.startswith("blank|waiting for the kernel…") for s in seen), seen
        progress = [
            re.search(r"embedding (\d+) % · (\d+)/(\d+) windows", s) for s in seen if "embedding" in s
        ]
        steps = [(int(m[1]), int(m[2]), int(m[3])) for m in progress if m]
        assert steps, seen  # the kernel's progress reached the canvas while it was busy
        assert all(pct == 100 * done // total and total > 1 for pct, done, total in steps), steps
        assert page.locator(".sam-widget").get_attribute("data-view")  # the new image is drawn
        shape = page.evaluate("() => JSON.parse(document.querySelector('.sam-widget').dataset.view).scale")
        assert 0 < shape < 1  # fitted: the 512² plane in a 360 px tall canvas
        assert not errors, errors
