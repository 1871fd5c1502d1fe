"""Segment everything in napari against the same call outside it, in one run.

Opens real napari (run it under ``xvfb-run -a -s "-screen 0 1600x1200x24"`` on a headless machine), adds
a variant of the stardist nuclei, docks the "Segment everything" widget, clicks its Run button with a real
Qt mouse click and waits in Qt's event loop until the result layer appears. The reference is
``segment_everything`` on the same image and model in the same process, outside napari. Also counts the
main window's repaints while the job ran and the seconds they took (each one holds the GIL under PyQt).

    xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python benchmarks/bench_napari_everything.py \
        [--variant down2] [--crop 512] [--json-out F]

Prints a table, then one JSON line with ``napari_s``, ``outside_s`` and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="down2", help="a variant of napari_sam.io.sample_variants")
    ap.add_argument("--crop", type=int, default=512, help="top-left crop side (pixels)")
    ap.add_argument("--json-out", help="also write the JSON line to this file")
    args = ap.parse_args(argv)

    import napari
    import torch
    from napari._qt.qt_main_window import _QtMainWindow
    from qtpy.QtCore import QEvent, Qt
    from qtpy.QtTest import QTest

    from _report import emit_json
    from bench_first_mask import _run_until
    from napari_sam.automatic import match_scores, segment_everything
    from napari_sam.io.sample_variants import variant
    from napari_sam.io.samples import nuclei
    from napari_sam.models.loading import load_model

    image, truth = variant(args.variant, *nuclei())
    image, truth = image[: args.crop, : args.crop], truth[: args.crop, : args.crop]
    model = load_model("lite_medsam", device="cpu")
    segment_everything(image[:64, :64], model=model)  # warm the model once for both

    repaints = {"count": 0, "seconds": 0.0, "counting": False}
    plain_event = _QtMainWindow.event

    def timed_event(self, e):
        t = time.perf_counter()
        result = plain_event(self, e)
        if repaints["counting"] and e.type() == QEvent.Type.UpdateRequest:
            repaints["count"] += 1
            repaints["seconds"] += time.perf_counter() - t
        return result

    _QtMainWindow.event = timed_event
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    viewer.add_image(image, name="nuclei")
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam", "Segment everything")
    widget.device_combo.setCurrentText("cpu")
    widget._models[("lite_medsam", "cpu")] = model
    try:
        _run_until(lambda: False, 1.0)
    except TimeoutError:
        pass
    repaints["counting"] = True
    t0 = time.perf_counter()
    QTest.mouseClick(widget.run_btn, Qt.LeftButton)
    _run_until(lambda: widget.result_layer is not None, 1800)
    napari_s = time.perf_counter() - t0
    repaints["counting"] = False
    napari_f1 = match_scores(widget.result_layer.data, truth)["f1"]
    viewer.close()
    _QtMainWindow.event = plain_event

    t0 = time.perf_counter()
    labels = segment_everything(image, model=model)
    outside_s = time.perf_counter() - t0
    outside_f1 = match_scores(labels, truth)["f1"]

    rows = [
        ("napari: Run → result layer", f"{napari_s:.1f} s", f"F1 {napari_f1:.3f}"),
        ("outside napari, same call", f"{outside_s:.1f} s", f"F1 {outside_f1:.3f}"),
        ("napari / outside", f"{napari_s / outside_s:.2f}", ""),
        ("window repaints during the job", str(repaints["count"]), f"{repaints['seconds']:.1f} s"),
    ]
    for name, value, note in rows:
        print(f"{name:<34}{value:>10}  {note}")
    result = {
        "bench": "napari_everything",
        "variant": args.variant,
        "shape": list(image.shape),
        "threads": torch.get_num_threads(),
        "napari_s": round(napari_s, 2),
        "outside_s": round(outside_s, 2),
        "ratio": round(napari_s / outside_s, 3),
        "napari_f1": round(napari_f1, 3),
        "outside_f1": round(outside_f1, 3),
        "repaints": repaints["count"],
        "repaint_s": round(repaints["seconds"], 2),
    }
    emit_json(result, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
