"""Background embedding of a large image in the annotator: the tiles in view first, the rest outwards,
while the user prompts (prompts elsewhere embed their own window first; see
:meth:`napari_sam.segmenter.Segmenter.iter_encode_view_first`). The dock shows a progress bar, the
percentage, tiles done / total and the time left; Stop keeps the finished tiles (in the embedding cache
when one is chosen, so a later session resumes).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from napari_sam._napari._progress_panel import ProgressPanel


def view_box(viewer, layer) -> tuple[float, float, float, float] | None:
    """The part of ``layer``'s last two data axes in view on the canvas, as
    (min_row, min_col, max_row, max_col) data pixels (main thread); None when it cannot be told.
    """
    try:
        h, w = (float(v) for v in viewer.canvas.size)
        zoom = float(viewer.camera.zoom)
        center = np.asarray(viewer.camera.center, dtype=float)[-2:]
    except (AttributeError, TypeError, ValueError):
        return None
    if zoom <= 0:
        return None
    point = np.asarray(viewer.dims.point, dtype=float).copy()
    corners = []
    for dr, dc in ((-h, -w), (h, w), (-h, w), (h, -w)):
        world = point.copy()
        world[-2:] = center + np.array([dr, dc]) / (2 * zoom)
        corners.append(np.asarray(layer.world_to_data(world), dtype=float)[-2:])
    corners = np.array(corners)
    r0, c0 = corners.min(axis=0)
    r1, c1 = corners.max(axis=0)
    return float(r0), float(c0), float(r1), float(c1)


WAITING = "Paused: the next tile starts after 2 s without prompts, so your clicks are answered first."


class BackgroundEmbeddingPanel(ProgressPanel):
    """The dock's :class:`ProgressPanel` ("Embedding in the background: 37 % · 163/441 tiles · about 2 min
    left") with a Stop button, for a large image's tiles.

    :meth:`embed` runs ``segmenter.iter_encode_view_first`` in a napari worker (a generator: stopping
    quits it between tiles), asking ``view()`` (main-thread state) for the region in view after each
    tile. ``running`` says whether it runs.
    """

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.cancel_btn.setText("Stop")
        self.cancel_btn.setToolTip("Stop embedding in the background; finished tiles are kept")
        self.cancel_requested.connect(self.stop)
        self.worker = None
        self.done = self.total = 0
        self._where = ""

    @property
    def stop_btn(self):
        return self.cancel_btn

    @property
    def label(self):
        return self.line

    def embed(self, segmenter, plane: int, view: Callable[[], tuple | None], on_finish=None) -> None:
        """Embed the unfinished tiles of ``plane`` (flat index), nearest the view first."""
        from napari_sam._napari._workers import start_worker

        self.stop()
        total = len(segmenter.grid)
        pending = len(segmenter.embeddings.pending_tiles(plane))
        self._where = f" of plane {plane}" if plane else ""
        if pending == 0:
            self.finish(f"All {total} tiles embedded.")
            return
        self.start("tiles")
        self._show(total - pending, total)
        state = {"view": view()}

        def job():
            yield from segmenter.iter_encode_view_first(view=lambda: state["view"], plane=plane)

        def step(value) -> None:
            state["view"] = view()  # main thread: read the camera here, the worker reads the copy
            done, n = value
            shown = (total - n + done, segmenter.background_waiting)
            if shown == state.get("shown"):  # waiting (a yield every 0.1 s): nothing to repaint
                return
            state["shown"] = shown
            self._show(shown[0], total)
            self.set_detail(WAITING if shown[1] else "")

        def finished() -> None:
            if self.worker is worker:
                self.worker = None
                self.finish(
                    f"All {self.total} tiles embedded." if self.done >= self.total else self.line.text()
                )
                if on_finish is not None:
                    on_finish()

        worker = start_worker(job, what="embedding in the background", on_yield=step, on_finish=finished)
        self.worker = worker

    def _show(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        self.update(done, total)
        self.line.setText(f"Embedding{self._where} in the background: {self.line.text()}")

    def stop(self, wait: bool = False) -> None:
        """Stop after the tile being encoded; finished tiles stay (in the cache when one is chosen).

        With ``wait`` (closing the widget) block until the worker's thread has ended, so it never signals
        into deleted Qt objects.
        """
        worker, self.worker = self.worker, None
        if worker is None:
            return
        worker.quit()
        self.finish(
            f"Stopped: {self.done}/{self.total} tiles embedded (kept); prompts elsewhere embed their "
            "window when needed. Compute embeddings resumes."
        )
        if wait:
            end = time.monotonic() + 300
            while worker.is_running and time.monotonic() < end:
                time.sleep(0.02)
            time.sleep(0.05)  # its last signals are emitted just after it stops running
