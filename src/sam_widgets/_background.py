"""Background embedding of a large image in the notebook: a daemon thread runs the core's view-first
generator (:meth:`napari_sam.segmenter.Segmenter.iter_encode_view_first`) while the kernel stays free
for prompts; the widget tells it which region the canvas shows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class BackgroundEmbedding:
    """One background embedding run at a time for one widget.

    The thread stops between tiles when :meth:`stop` is called (finished tiles stay in the store) or
    when it is done. Errors end the run and are kept in :attr:`error` (the widget shows them).
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.error: BaseException | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, segmenter, plane: int, view: Callable[[], tuple | None], on_done=None) -> None:
        """Embed the unfinished tiles of ``plane`` (flat index), those in ``view()`` first."""
        self.stop()
        stop = self._stop = threading.Event()
        self.error = None

        def run() -> None:
            steps = segmenter.iter_encode_view_first(view=view, plane=plane)
            try:
                for _ in steps:
                    if stop.is_set():
                        break
            except Exception as err:  # noqa: BLE001 - kept for the widget to show
                self.error = err
            finally:
                steps.close()
                if on_done is not None and not stop.is_set():
                    on_done(self.error)

        self._thread = threading.Thread(target=run, name="napari-sam background embedding", daemon=True)
        self._thread.start()

    def stop(self, wait: bool = True) -> None:
        """Stop after the tile being encoded (``wait``: until the thread has ended)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()
