"""Start and stop a private JupyterLab on 127.0.0.1 for the browser test (token auth, isolated dirs)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Quiet first start: no news toast, no announcements asking for consent.
_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


# Kernel-side code for a notebook whose widget is ``w`` (and which imported os and numpy as np): every
# change of the committed labels is written atomically to labels.npy in the server's folder, where the
# test reads what the kernel holds; ends by showing the widget.
SAVE_LABELS_CELL_END = """
def save_labels(change=None):
    with open("labels.tmp", "wb") as f:
        np.save(f, w.labels)
    os.replace("labels.tmp", "labels.npy")

w.observe(save_labels, names="labels_version")
save_labels()
w"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    process: subprocess.Popen
    url: str
    token: str
    log: Path

    def lab_url(self, notebook: str) -> str:
        return f"{self.url}/lab/tree/{notebook}?token={self.token}"

    def stop(self, timeout: float = 20.0) -> None:
        """Terminate the server we started (it shuts its kernels down) and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_lab(root: Path, state: Path, timeout: float = 90.0) -> LabServer:
    """Launch ``jupyter lab`` serving ``root`` on a free localhost port; wait until its API answers."""
    port, token = free_port(), secrets.token_hex(16)
    settings = state / "settings"
    for name, value in _SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(state / "config"),
        JUPYTER_RUNTIME_DIR=str(state / "runtime"),
        IPYTHONDIR=str(state / "ipython"),
        JUPYTER_PLATFORM_DIRS="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    log = state / "jupyterlab.log"
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.terminals_enabled=False",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={state / 'workspaces'}",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI runners
        cmd.append("--allow-root")
    process = subprocess.Popen(cmd, cwd=root, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    server = LabServer(process, f"http://127.0.0.1:{port}", token, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/api/status?token={token}", timeout=2) as r:
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"jupyter lab did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


# -- the browser side: Chromium through Playwright -----------------------------------------------------
CHROMIUM = os.environ.get("NAPARI_SAM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "_artifacts"


def run_all_cells(page) -> None:
    """Wait for the kernel, then Run ▸ Run All Cells from JupyterLab's menu bar."""
    page.get_by_text("| Idle").first.wait_for(timeout=90_000)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def canvas_point(page, widget, row: float, col: float) -> tuple[float, float]:
    """Page coordinates of image pixel (row, col) in the widget's canvas (its current view)."""
    view = json.loads(widget.get_attribute("data-view"))
    box = page.locator(".sam-widget canvas.sam-canvas").bounding_box()
    return (
        box["x"] + view["tx"] + (col + 0.5) * view["scale"],
        box["y"] + view["ty"] + (row + 0.5) * view["scale"],
    )


@contextmanager
def notebook_page(tmp_path: Path, name: str, cells: list[str], viewport=(1100, 900)):
    """A notebook of ``cells`` open in JupyterLab in Chromium: yields ``(page, root, errors)``.

    Skips the test without Playwright or Chromium. ``root`` is the server's folder (write input files
    there before running the cells). On a failure the page is saved to ``tests/_artifacts/<name>_failure.png``
    and the widget's status printed; at the end the server is stopped and the page must have raised no
    JavaScript error.
    """
    import nbformat
    import pytest

    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (set NAPARI_SAM_CHROMIUM)")
    root, state = tmp_path / "root", tmp_path / "state"
    root.mkdir()
    state.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code) for code in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / name)
    server = start_lab(root, state)
    errors: list[str] = []
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.on("pageerror", lambda e: errors.append(str(e)))
            try:
                page.goto(server.lab_url(name))
                page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=90_000)
                yield page, root, errors
            except Exception:
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / f"{Path(name).stem}_failure.png"))
                print("widget status:", page.locator(".sam-status").all_text_contents(), "errors:", errors)
                raise
            finally:
                browser.close()
    finally:
        server.stop()
    assert not errors, f"JavaScript errors in the page: {errors}"
