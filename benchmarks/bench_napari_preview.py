"""Prompt → preview latency of the napari annotator, end to end, on the CPU.

A real napari viewer (under Xvfb: ``xvfb-run -a python benchmarks/bench_napari_preview.py``) with the
annotator docked on the nuclei sample and LiteMedSAM's embeddings computed. Each sample is one
prompt edit made as a user makes it (a rectangle added to the Shapes layer, a point added to the
Points layer, a box nudged) and is timed from the layer edit to the annotator's ``preview_updated``
signal, i.e. after the worker predicted, the preview Labels layer was painted and refreshed.

Two cases are reported apart:

* ``ready``: the embeddings the prompt needs are in memory (the whole image's, and the zoom window
  of that object after its first prompt) — what "with embeddings ready" means;
* ``first touch``: the first prompt on a new object, which may embed its zoom window on demand (an
  edit that moves the object into another zoom window is reported apart, with the same cost).

``click alone``: a click with no box on a new object; LiteMedSAM, trained with boxes, turns it into
the box of the object under it (a batch of decoder passes) in a worker, so the click holds the main
thread only for napari's own handling of it.

"ready" is also timed to the end of the first canvas frame drawn after the preview was painted (the
mask on screen): under Xvfb that frame is rendered by Mesa's llvmpipe on the CPU, which a desktop
with a graphics card does not pay.

When the embeddings are ready, the annotator decodes on the main thread (see
``AnnotatorWidget.request_preview``); the share of such previews is printed.

Prints a table and one JSON line (``{"bench": "napari_preview", ...}``).
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


def _wait(signal, got: list, timeout: float = 120.0) -> None:
    """Run Qt's event loop (idle, as in a user's session: no busy polling that would hold the GIL)
    until ``signal`` has put something into ``got``."""
    from qtpy.QtCore import QEventLoop, QTimer

    if got:
        return
    loop = QEventLoop()
    signal.connect(loop.quit)
    QTimer.singleShot(int(timeout * 1000), loop.quit)
    try:
        loop.exec_()
    finally:
        signal.disconnect(loop.quit)
    if not got:
        raise TimeoutError("no signal within the timeout")


def _settle(app, widget) -> None:
    while widget.busy or widget.previews.pending:  # let a coalesced follow-up finish before the next sample
        app.processEvents()
        time.sleep(0.005)


def _timed(
    app, widget, action, split: list | None = None, frames: list | None = None, refined: list | None = None
) -> float:
    """Seconds from ``action()`` (a prompt edit) to the first ``preview_updated``; with ``frames``, also
    appends the seconds to the end of the first canvas frame drawn after that preview was painted, with
    ``refined`` the seconds to the last preview (the zoom window's, after a coarse first one)."""
    from qtpy.QtCore import QEventLoop, QTimer

    got: list = []
    drawn: list = []

    def slot(_):
        got.append(time.perf_counter())

    def on_draw(_event):
        if got and not drawn:
            drawn.append(time.perf_counter())

    canvas = widget.viewer.window._qt_viewer.canvas._scene_canvas
    widget.preview_updated.connect(slot)
    canvas.events.draw.connect(on_draw, position="last")  # after napari's own draw handler rendered
    try:
        t0 = time.perf_counter()
        action()
        _wait(widget.preview_updated, got)
        if frames is not None:
            deadline = time.perf_counter() + 1.0
            while not drawn and time.perf_counter() < deadline:
                loop = QEventLoop()
                QTimer.singleShot(2, loop.quit)
                loop.exec_()
            if drawn:
                frames.append(drawn[0] - t0)
        if split is not None:  # the core's predict, and the rest (layer edit, worker if any, paint)
            split.append(widget.last_timing["predict_s"])
        _settle(app, widget)  # a coarse first preview is followed by the zoom window's
    finally:
        widget.preview_updated.disconnect(slot)
        canvas.events.draw.disconnect(on_draw)
    if refined is not None:
        refined.append(got[-1] - t0)
    return got[0] - t0


def _to_frame(app, viewer, action) -> float:
    """Seconds from ``action()`` to the end of the next canvas frame."""
    from qtpy.QtCore import QEventLoop, QTimer

    drawn: list = []
    canvas = viewer.window._qt_viewer.canvas._scene_canvas
    on_draw = lambda _event: drawn.append(time.perf_counter())  # noqa: E731
    canvas.events.draw.connect(on_draw, position="last")
    try:
        t0 = time.perf_counter()
        action()
        while not drawn and time.perf_counter() < t0 + 1.0:
            loop = QEventLoop()
            QTimer.singleShot(2, loop.quit)
            loop.exec_()
    finally:
        canvas.events.draw.disconnect(on_draw)
    for _ in range(5):
        app.processEvents()
    return drawn[0] - t0


def _stats(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {
        "n": int(a.size),
        "median_ms": float(np.median(a)),
        "p90_ms": float(np.percentile(a, 90)),
        "max_ms": float(a.max()),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=8, help="nuclei prompted")
    parser.add_argument(
        "--edits", type=int, default=6, help="prompt edits per nucleus once its window is ready"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)

    import napari
    import torch
    from qtpy.QtWidgets import QApplication

    import napari_sam as ns
    from napari_sam.io.samples import nuclei

    if args.threads:
        torch.set_num_threads(args.threads)
    image, truth = nuclei()
    model = ns.load_model("lite_medsam", device="cpu")
    viewer = napari.Viewer(show=bool(os.environ.get("DISPLAY")))
    app = QApplication.instance()
    viewer.add_image(image, name="nuclei")
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam", "Annotator")
    viewer.window._qt_window.resize(1500, 950)  # a desktop-sized window: the canvas is really drawn
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)
    viewer.reset_view()
    canvas_size = viewer.window._qt_viewer.canvas._scene_canvas.native.size()
    widget.device_combo.setCurrentText("cpu")
    widget._models[("lite_medsam", "cpu")] = model
    ready: list = []
    widget.embeddings_ready.connect(ready.append)
    t0 = time.perf_counter()
    widget.compute_embeddings()
    _wait(widget.embeddings_ready, ready)
    encode_s = time.perf_counter() - t0
    _settle(app, widget)

    ids, areas = np.unique(truth[truth > 0], return_counts=True)
    chosen = ids[np.argsort(-areas)][: args.objects * 3 : 3]  # mid-to-large nuclei spread over the image
    first, warm, core, warm_predict, warm_frame, inline, new_window = [], [], [], [], [], [], []
    first_refined, first_coarse, new_window_refined = [], [], []
    rng = np.random.default_rng(0)
    for label in chosen:
        rows, cols = np.nonzero(truth == label)
        box = np.array([[rows.min(), cols.min()], [rows.max(), cols.max()]], dtype=float)
        centre = np.array([rows.mean(), cols.mean()])
        widget.clear_prompts()
        _settle(app, widget)
        first.append(
            _timed(app, widget, lambda: widget.shapes_layer.add_rectangles(box), refined=first_refined)
        )
        first_coarse.append(bool(widget.last_timing.get("coarse")) or first_refined[-1] > first[-1])
        for e in range(args.edits):
            encoded = widget.session.segmenter.embeddings.encoded_count
            predict_s, frame_s, refined = [], [], []
            if e % 2 == 0:  # nudge the box by a pixel or two, as when dragging a corner
                nudged = box + rng.integers(-2, 3, size=box.shape)
                total = _timed(
                    app,
                    widget,
                    lambda: setattr(widget.shapes_layer, "data", [nudged]),
                    predict_s,
                    frame_s,
                    refined,
                )
            else:  # add a point (positive) inside the object
                total = _timed(
                    app,
                    widget,
                    lambda: widget.points_layer.add(centre + rng.normal(0, 1, 2)),
                    predict_s,
                    frame_s,
                    refined,
                )
            if widget.session.segmenter.embeddings.encoded_count != encoded:
                new_window.append(total)  # the edit moved the object into a zoom window not embedded yet
                new_window_refined += refined
                continue
            warm.append(total)
            warm_predict += predict_s
            warm_frame += frame_s
            inline.append(bool(widget.last_timing.get("inline")))
        seg = widget.session.segmenter  # the core alone, for comparison: predict on the same prompts
        t = time.perf_counter()
        seg.predict(box=(box[0, 0], box[0, 1], box[1, 0], box[1, 1]))
        core.append(time.perf_counter() - t)

    # Clicks alone: a box-trained model (LiteMedSAM) searches the box under them, in a worker.
    click_first, click_refined, click_main = [], [], []
    for label in chosen:
        inside = np.argwhere(truth == label)
        centre = inside[np.argmin(((inside - inside.mean(axis=0)) ** 2).sum(axis=1))].astype(float)
        widget.clear_prompts()
        _settle(app, widget)
        t = time.perf_counter()
        widget.points_layer.add(centre)
        click_main.append(time.perf_counter() - t)  # how long the click held the main thread
        got: list = []
        slot = lambda _p: got.append(time.perf_counter())  # noqa: E731
        widget.preview_updated.connect(slot)
        try:
            _wait(widget.preview_updated, got)
            _settle(app, widget)
        finally:
            widget.preview_updated.disconnect(slot)
        click_first.append(got[0] - t)
        click_refined.append(got[-1] - t)

    # The floor napari sets: the same edits with the annotator switched off (its slots disconnected),
    # timed to the end of the frame that shows them.
    points, shapes = widget.points_layer, widget.shapes_layer
    widget.shutdown()
    napari_only = []
    for label in chosen:
        rows, cols = np.nonzero(truth == label)
        box = np.array([[rows.min(), cols.min()], [rows.max(), cols.max()]], dtype=float)
        centre = np.array([rows.mean(), cols.mean()])
        for e in range(args.edits):
            if e % 2 == 0:
                nudged = box + rng.integers(-2, 3, size=box.shape)
                napari_only.append(_to_frame(app, widget.viewer, lambda: setattr(shapes, "data", [nudged])))
            else:
                napari_only.append(
                    _to_frame(app, widget.viewer, lambda: points.add(centre + rng.normal(0, 1, 2)))
                )
    viewer.close()

    result = {
        "bench": "napari_preview",
        "model": "lite_medsam",
        "device": "cpu",
        "image": list(image.shape),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_avg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "encode_s": encode_s,
        "canvas_px": [canvas_size.width(), canvas_size.height()],
        "ready": _stats([1000 * x for x in warm]),
        "first_touch": _stats([1000 * x for x in first]),
        "core_predict_ready": _stats([1000 * x for x in core]),
        "ready_predict": _stats([1000 * x for x in warm_predict]),
        "ready_on_screen": _stats([1000 * x for x in warm_frame]) if warm_frame else None,
        "ready_inline_fraction": float(np.mean(inline)),
        "napari_alone_on_screen": _stats([1000 * x for x in napari_only]),
        "click_main_thread": _stats([1000 * x for x in click_main]),
        "click_first_preview": _stats([1000 * x for x in click_first]),
        "click_refined_preview": _stats([1000 * x for x in click_refined]),
        "first_touch_refined": _stats([1000 * x for x in first_refined]),
        "first_touch_coarse_fraction": float(np.mean(first_coarse)),
        "edit_needing_new_window": _stats([1000 * x for x in new_window]) if new_window else None,
        "edit_needing_new_window_refined": _stats([1000 * x for x in new_window_refined])
        if new_window
        else None,
        "ready_adapter_overhead": _stats([1000 * (a - b) for a, b in zip(warm, warm_predict)]),
    }
    print(
        f"napari annotator, prompt → preview (LiteMedSAM, CPU, {torch.get_num_threads()} torch threads, "
        f"load {result['load_avg_1min']:.1f} on {os.cpu_count()} cores); embeddings {encode_s:.2f} s; "
        f"canvas {result['canvas_px'][0]}×{result['canvas_px'][1]} px"
    )
    print(f"{'case':<36}{'n':>4}{'median ms':>12}{'p90 ms':>10}{'max ms':>10}")
    for name, key in (
        ("ready (embeddings in memory)", "ready"),
        ("  of which Segmenter.predict", "ready_predict"),
        ("  of which napari + adapter", "ready_adapter_overhead"),
        ("ready, until the frame is drawn", "ready_on_screen"),
        ("  same edits, annotator off", "napari_alone_on_screen"),
        ("first touch: first preview", "first_touch"),
        ("first touch: zoom window's preview", "first_touch_refined"),
        ("edit into a new zoom window: first", "edit_needing_new_window"),
        ("  and the zoom window's preview", "edit_needing_new_window_refined"),
        ("click alone: main thread held", "click_main_thread"),
        ("click alone: first preview (worker)", "click_first_preview"),
        ("click alone: zoom window's preview", "click_refined_preview"),
        ("core predict alone (main thread)", "core_predict_ready"),
    ):
        s = result[key]
        if s is not None:
            print(f"{name:<36}{s['n']:>4}{s['median_ms']:>12.1f}{s['p90_ms']:>10.1f}{s['max_ms']:>10.1f}")
    print(
        f"ready previews answered on the main thread: {100 * result['ready_inline_fraction']:.0f} %; "
        f"first touches with a coarse first preview: {100 * result['first_touch_coarse_fraction']:.0f} %"
    )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
