"""Progress where the user looks: the segment-everything and batch docks show a progress bar, the
percentage · count · time-left line, which file and plane the batch is at, and Cancel, in the dock itself
(real napari under Xvfb, the real model and batch job)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sam_napari_helpers import ENCODE_TIMEOUT_MS

pytestmark = pytest.mark.gui

# screenshots go to tests/_artifacts/ (copied to docs/images/ by hand after looking at them)
SHOTS = Path(__file__).resolve().parents[1] / "_artifacts"


def _files(tmp_path) -> list[str]:
    """A 2D image and a 2-plane stack."""
    import tifffile

    from napari_sam.io.samples import blobs

    src = tmp_path / "in"
    src.mkdir()
    planes = [blobs((96, 96), [(30, 30), (62, 66)], [10, 12], seed=i)[0] for i in range(3)]
    tifffile.imwrite(src / "single.tif", planes[0])
    tifffile.imwrite(src / "stack.tif", np.stack(planes[1:]), photometric="minisblack")
    return [str(src / "single.tif"), str(src / "stack.tif")]


def _record(widget) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    widget.progress.changed.connect(lambda line, detail: seen.append((line, detail)))
    return seen


def test_batch_dock_shows_each_plane_with_a_bar_and_the_file(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer(show=True)
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam", "Batch labeling")
    widget.add_files(_files(tmp_path))
    widget.outdir.setText(str(tmp_path / "out"))
    widget.device_combo.setCurrentText("cpu")
    widget.open_results.setChecked(False)
    seen = _record(widget)
    bars: list[tuple[int, int, bool, bool]] = []  # (value, maximum, bar shown, Cancel enabled) per count
    grabbed: list[bool] = []

    def on_change(line, detail):
        if " planes" not in line:
            return
        bars.append(
            (
                widget.progress.bar.value(),
                widget.progress.bar.maximum(),
                widget.progress.isVisible(),
                widget.progress.cancel_btn.isEnabled(),
            )
        )
        if widget.progress.bar.value() == 2 and detail and not grabbed:  # mid-run, for the docs
            grabbed.append(True)
            SHOTS.mkdir(exist_ok=True)
            widget.grab().save(str(SHOTS / "napari_progress_dock.png"))

    widget.progress.changed.connect(on_change)
    qtbot.waitUntil(widget.isVisible)  # the dock is on screen before the user presses Run
    assert not widget.progress.isVisible()  # nothing running: no panel
    worker = widget.run()
    assert widget.progress.isVisible() and widget.cancel_btn.isEnabled() and not widget.run_btn.isEnabled()
    with qtbot.waitSignal(worker.finished, timeout=4 * ENCODE_TIMEOUT_MS):
        pass
    assert widget.report.ok and len(widget.written) == 2
    lines = [line for line, _ in seen]
    details = {detail for _, detail in seen if detail}
    for done in range(1, 4):  # one report per plane: 1 of the 2D file + 2 of the stack
        assert any(line.startswith(f"{100 * done // 3} % · {done}/3 planes") for line in lines), lines
    assert "single.tif: its only plane done" in details, details
    assert {"stack.tif: plane 1/2 done", "stack.tif: plane 2/2 done"} <= details, details
    assert all(shown and cancel and maximum == 3 for _, maximum, shown, cancel in bars), bars
    # the bar follows the planes; the panel goes away when the job is over, the outcome stays in the status
    assert list(dict.fromkeys(value for value, *_ in bars)) == [1, 2, 3], bars
    assert not widget.progress.isVisible() and not widget.cancel_btn.isEnabled()
    assert widget.status.text().startswith("Labeled 2 file(s)")


def test_segment_everything_dock_progress_and_cancel(make_napari_viewer, qtbot, lite_medsam):
    from napari_sam.io.samples import nuclei

    image, _ = nuclei()
    viewer = make_napari_viewer(show=True)
    viewer.add_image(image, name="nuclei")
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam", "Segment everything")
    widget.device_combo.setCurrentText("cpu")
    widget._models[("lite_medsam", "cpu")] = lite_medsam
    seen = _record(widget)
    worker = widget.run()
    # nothing animates while the job runs: an animated busy bar (ours, or napari's activity indicator,
    # which spins while any napari progress is open) repaints the window ~25 times a second, and those
    # repaints held the GIL long enough to make the job 2-4x slower in napari than outside it
    from napari.utils import progress as napari_progress

    assert widget.progress.bar.maximum() > 0 and not len(napari_progress._all_instances)
    qtbot.waitUntil(lambda: "Segmenting everything … 1 s" in widget.progress.line.text(), timeout=5000)
    qtbot.waitUntil(lambda: any(" windows" in line for line, _ in seen), timeout=2 * ENCODE_TIMEOUT_MS)
    line = next(line for line, _ in seen if " windows" in line)
    pct, count = line.split(" · ")[:2]
    done, total = (int(v) for v in count.split()[0].split("/"))
    assert pct == f"{100 * done // total} %" and widget.progress.bar.maximum() == total
    widget.cancel_btn.click()  # the panel's Cancel
    assert not widget.cancel_btn.isEnabled()
    with qtbot.waitSignal(worker.finished, timeout=2 * ENCODE_TIMEOUT_MS):
        pass
    assert widget.status.text() == "Cancelled segment everything."
    assert "nuclei SAM everything" not in viewer.layers
    assert widget.run_btn.isEnabled() and not widget.progress.isVisible()
