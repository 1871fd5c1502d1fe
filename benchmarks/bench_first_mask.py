"""First mask on a large image before it is embedded, in napari and in the notebook widget.

A fresh 4096 × 4096 uint16 image (the real stardist nuclei tiled 8 × 8, so every region holds real
nuclei): 441 LiteMedSAM tiles. As a new user does it:

* **napari** (real viewer under Xvfb: ``xvfb-run -a python benchmarks/bench_first_mask.py``): dock the
  annotator, press *Compute embeddings*, click on a nucleus near the centre of the view. Timed from the
  press to the first final mask painted (``napari_first_mask_s``; the click comes 1 s after the prompt
  layers appear, as a user looks first), with the model already loaded (its load is timed apart).
  Meanwhile a 10 ms Qt timer on the main thread measures the longest freeze of the viewer, overall
  (``napari_max_freeze_ms``: adding the four prompt layers is napari's own work on the main thread) and
  from the click to the mask (``napari_max_freeze_prompting_ms``).
* **notebook** (the widget's Python side, as a kernel runs it): ``SamWidget(image)`` then
  ``w.add_point(row, col)``; timed from the constructor to the mask (``notebook_first_mask_s``).

The reference, measured in the same run on the same image: embedding every tile first, as both front
ends did before (``--full``; about as long as the whole background run, so off by default where the
machine is slow: then the rate of the first background tiles gives an estimate, marked as such).

Prints a table and one JSON line (``{"bench": "first_mask", ...}``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", message="Private attribute access", category=FutureWarning)


def large_image() -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """(4096, 4096) uint16 image, its labels and the (row, col) of a nucleus near the centre."""
    from napari_sam.io.samples import nuclei

    img, gt = nuclei()
    scale = 65535.0 / max(float(img.max()), 1.0)
    big = np.tile((img.astype(np.float64) * scale).astype(np.uint16), (8, 8))
    labels = np.tile(gt, (8, 8))
    ids, areas = np.unique(gt[gt > 0], return_counts=True)
    rows, cols = np.indices(gt.shape)
    best, where = None, None
    for i in ids[(areas > 250) & (areas < 900)]:
        m = gt == i
        r, c = rows[m].mean(), cols[m].mean()
        d = abs(r - 256) + abs(c - 256)
        if best is None or d < best:
            best, where = d, (int(round(r)) + 4 * 512, int(round(c)) + 4 * 512)
    return big, labels, where


def _run_until(predicate, timeout: float = 300.0) -> None:
    """Run Qt's event loop (as napari's application does, blocked between events rather than polling,
    which would take CPU from the encoder) until ``predicate()``, checked every 5 ms.
    """
    from qtpy.QtCore import QEventLoop, QTimer

    end = time.perf_counter() + timeout
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(5)

    def check() -> None:
        if predicate() or time.perf_counter() > end:
            loop.quit()

    timer.timeout.connect(check)
    timer.start()
    if not predicate():
        loop.exec_()
    timer.stop()
    if not predicate():
        raise TimeoutError("timed out")


def bench_napari(big, click) -> dict:
    import napari
    from qtpy.QtCore import QTimer

    from napari_sam.models.loading import load_model

    t = time.perf_counter()
    model = load_model("lite_medsam", device="cpu")
    load_s = time.perf_counter() - t
    viewer = napari.Viewer(show=True)
    viewer.add_image(big, name="big uint16")
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam", "Annotator")
    widget.device_combo.setCurrentText("cpu")
    widget._models[("lite_medsam", "cpu")] = model
    end = time.perf_counter() + 1.0
    _run_until(lambda: time.perf_counter() > end)

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    shown: list = []
    widget.preview_updated.connect(lambda p: shown.append((time.perf_counter(), p, widget.refined)))
    start = time.perf_counter()
    widget.compute_embeddings()
    _run_until(lambda: widget.session is not None and widget.points_layer is not None)
    ready_s = time.perf_counter() - start
    settle = time.perf_counter() + 1.0  # a user looks before clicking
    _run_until(lambda: time.perf_counter() > settle)
    clicked = time.perf_counter()
    widget.points_layer.add(np.array(click, dtype=float))
    _run_until(lambda: any(p is not None and final for _, p, final in shown))
    first = next(t for t, p, final in shown if p is not None and final)
    rough = next((t for t, p, _ in shown if p is not None), first)
    timer.stop()
    gaps = np.diff([start, *[t for t in ticks if start <= t <= first], first])
    prompting = np.diff([clicked, *[t for t in ticks if clicked <= t <= first], first])
    seg = widget.session.segmenter
    done_at_mask = seg.store.count_done()
    # the rate of the background for the estimate of "embed everything first"
    t0, n0 = time.perf_counter(), seg.store.count_done()
    end = t0 + 20.0
    _run_until(lambda: time.perf_counter() > end or not widget.background.running)
    rate = (seg.store.count_done() - n0) / max(time.perf_counter() - t0, 1e-9)
    widget.background.stop()
    viewer.close()
    return {
        "model_load_s": load_s,
        "napari_ready_s": ready_s,
        "napari_first_rough_s": rough - start,
        "napari_first_mask_s": first - start,
        "napari_click_to_mask_s": first - clicked,
        "napari_max_freeze_ms": 1000 * float(gaps.max()),
        "napari_max_freeze_prompting_ms": 1000 * float(prompting.max()),
        "napari_tiles_done_at_first_mask": int(done_at_mask),
        "background_tiles_per_s": rate,
        "tiles": len(seg.grid),
    }


def bench_notebook(big, click) -> dict:
    from napari_sam.models.loading import load_model
    from napari_sam.segmenter import Segmenter
    from sam_widgets import SamWidget

    model = load_model("lite_medsam", device="cpu")
    start = time.perf_counter()
    w = SamWidget(big, segmenter=Segmenter(model), progress=False)
    open_s = time.perf_counter() - start
    w.add_point(*click)
    first = time.perf_counter() - start
    area = int(w.mask.sum())
    w.stop_embedding()
    return {"notebook_open_s": open_s, "notebook_first_mask_s": first, "notebook_mask_px": area}


def bench_full(big) -> float:
    """Reference: every tile embedded before the first prompt (the old behaviour of both front ends)."""
    from napari_sam.models.loading import load_model
    from napari_sam.segmenter import Segmenter

    seg = Segmenter(load_model("lite_medsam", device="cpu"))
    t = time.perf_counter()
    seg.set_image(big)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="also time embedding all tiles first (minutes)")
    args = ap.parse_args()
    big, labels, click = large_image()
    out = {"bench": "first_mask", "image": list(big.shape), "dtype": str(big.dtype), "click": list(click)}
    out.update(bench_napari(big, click))
    out.update(bench_notebook(big, click))
    if args.full:
        out["reference_embed_all_s"] = bench_full(big)
        out["reference_kind"] = "measured"
    else:
        out["reference_embed_all_s"] = out["tiles"] / max(out["background_tiles_per_s"], 1e-9)
        out["reference_kind"] = "estimated from the background rate"
    for key in ("napari_first_mask_s", "notebook_first_mask_s"):
        out[key.replace("_s", "_ratio")] = out[key] / out["reference_embed_all_s"]
    out["cpu_threads"] = os.cpu_count()
    out["machine"] = platform.processor() or platform.machine()
    rows = [
        ("model load (apart)", f"{out['model_load_s']:.2f} s"),
        ("napari: Compute → ready to prompt", f"{out['napari_ready_s']:.2f} s"),
        ("napari: Compute → first rough mask", f"{out['napari_first_rough_s']:.2f} s"),
        ("napari: Compute → first mask", f"{out['napari_first_mask_s']:.2f} s"),
        ("napari: click → mask", f"{out['napari_click_to_mask_s']:.2f} s"),
        ("napari: longest main-thread freeze (all)", f"{out['napari_max_freeze_ms']:.0f} ms"),
        ("napari: longest freeze, click → mask", f"{out['napari_max_freeze_prompting_ms']:.0f} ms"),
        ("napari: tiles embedded at first mask", f"{out['napari_tiles_done_at_first_mask']}/{out['tiles']}"),
        ("notebook: SamWidget(image) returns", f"{out['notebook_open_s']:.2f} s"),
        ("notebook: constructor → first mask", f"{out['notebook_first_mask_s']:.2f} s"),
        (f"reference: embed all first ({out['reference_kind']})", f"{out['reference_embed_all_s']:.1f} s"),
        (
            "first mask / reference (napari, notebook)",
            f"{out['napari_first_mask_ratio']:.3f}, {out['notebook_first_mask_ratio']:.3f}",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
