"""Embedding the planes and tiles of a :class:`~napari_sam.segmenter.Segmenter`'s image ahead of the
prompts: plane by plane from the plane in view outwards, or a plane's tiles from the view outwards in the
background, resumable into the embedding cache.

:class:`BackgroundEncoding` is one part of the segmenter (it inherits these methods). Views are
(min_row, min_col, max_row, max_col) in image pixels; planes of a stack as an index or the leading
indices.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from napari_sam.embeddings.embedder import Cancelled


class BackgroundEncoding:
    """Embed planes and tiles before they are prompted.

    Relies on what :class:`~napari_sam.segmenter.Segmenter` holds: ``embeddings`` (its
    :class:`~napari_sam.embeddings.embedder.WindowEmbeddings`), ``store`` (the tile store, None for a
    small 2D image), ``grid`` (its tile grid), ``source``, ``events``
    (:class:`~napari_sam.segmenter.SegmenterEvents`), ``_plane`` (the plane in view), ``whole_window``,
    ``background_waiting``, ``plane_index()``, ``_encode_plane()`` and ``_require_image()``.
    """

    def planes_to_encode(self, planes=None) -> list[int]:
        """``planes`` (default: all), the plane in view first, then outwards from it."""
        src = self._require_image()
        chosen = range(src.num_planes) if planes is None else [self.plane_index(p) for p in planes]
        return sorted(dict.fromkeys(chosen), key=lambda p: (abs(p - self._plane), p))

    def iter_encode_planes(self, planes=None):
        """Embed the unfinished tiles of ``planes``, nearest to the plane in view first.

        A generator for a UI thread: yields ``(plane, done, total)`` after each batch (``done``/``total``
        count tiles over all the planes). Stop it between batches by closing it (or stop iterating);
        finished tiles stay in the cache.
        """
        if self.store is None:  # a small 2D image: one whole-image window
            for p in self.planes_to_encode(planes):
                yield p, self._encode_plane(p), 1
            return
        order = self.planes_to_encode(planes)
        pending = {p: self.embeddings.pending_tiles(p) for p in order}
        total = sum(len(v) for v in pending.values())
        done = 0
        for p in order:
            if not pending[p]:
                continue
            for n, _ in self.embeddings.iter_encode_tiles(p, pending[p]):
                self.events.embedding_progress.emit(done + n, total)
                yield p, done + n, total
            done += len(pending[p])

    @property
    def is_tiled(self) -> bool:
        """Whether a plane is embedded as a grid of tiles (an image larger than twice the model input)."""
        return self.grid is not None and not self.grid.is_single

    def tiles_by_distance(self, view=None, plane: int | None = None) -> list[int]:
        """The unfinished tiles of ``plane`` (default: the plane in view), nearest to ``view`` first.

        Parameters
        ----------
        view
            The region in view, (min_row, min_col, max_row, max_col) in image pixels; None: the image
            centre. Tiles overlapping it come first (nearest its centre first), then the others by their
            distance from it.
        """
        if self.store is None:
            raise ValueError("tiles need a tiled image or a cache: set_image(..., cache=path)")
        p = self._plane if plane is None else self.plane_index(plane)
        h, w = self.source.plane_shape
        r0, c0, r1, c1 = (0, 0, h, w) if view is None else (float(v) for v in view)
        if r1 < r0 or c1 < c0:
            raise ValueError(f"view must be (min_row, min_col, max_row, max_col); got {view}")
        cr, cc = (r0 + r1) / 2, (c0 + c1) / 2

        def key(t: int) -> tuple[float, float]:
            win = self.grid.tile(t)
            tr, tc = win.row0 + win.size / 2, win.col0 + win.size / 2
            gap_r = max(r0 - (win.row0 + win.size), win.row0 - r1, 0.0)
            gap_c = max(c0 - (win.col0 + win.size), win.col0 - c1, 0.0)
            return (float(np.hypot(gap_r, gap_c)), float(np.hypot(tr - cr, tc - cc)))

        return sorted(self.embeddings.pending_tiles(p), key=key)

    def iter_encode_view_first(
        self, view=None, plane: int | None = None, batch_size: int = 1, quiet_s: float = 2.0
    ):
        """Embed the unfinished tiles of a plane in the background, those in view first.

        A generator for a front end's worker thread: yields ``(done, total)`` tiles after each batch and
        emits ``events.embedding_progress``. Prompts meanwhile are answered at once where their window
        is embedded, and their windows elsewhere are encoded first (this pauses between batches while a
        prompt's window is encoded). Stop it by closing the generator; finished tiles stay in the store
        (the cache is resumed by the next call or the next session).

        Parameters
        ----------
        view
            (min_row, min_col, max_row, max_col) in image pixels, or a callable returning it (asked before
            every batch, so panning the view re-orders what is left); None: the image centre.
        plane
            The plane (default: the plane in view).
        batch_size
            Tiles per encoder pass (1 keeps a prompt's wait short on a CPU).
        quiet_s
            Start a batch only once this many seconds have passed since the generator started and since
            the last prompt's encoder run: an encoder pass cannot be interrupted, so a click that comes
            soon after opening the image (or after the previous prompt) finds the processor free instead
            of waiting for a background tile (on 2 CPU cores a LiteMedSAM tile takes about 1.5 s).
            Meanwhile it yields the unchanged ``(done, total)`` every 0.1 s, so it can be stopped, and
            ``background_waiting`` is True. 0 starts at once.
        """
        self._require_image()
        p = self._plane if plane is None else self.plane_index(plane)
        if self.store is None:  # a small 2D image: one whole-image window
            self.embeddings.encode([self.whole_window], plane=p, background=True)
            self.events.embedding_progress.emit(1, 1)
            yield 1, 1
            return
        total = len(self.embeddings.pending_tiles(p))
        started = time.monotonic()
        done = 0
        try:
            while True:
                while time.monotonic() - max(started, self.embeddings.last_prompt) < quiet_s:
                    self.background_waiting = True
                    time.sleep(0.1)
                    yield done, total
                self.background_waiting = False
                where = view() if callable(view) else view
                pending = self.tiles_by_distance(where, p)  # also drops tiles a prompt had encoded meanwhile
                if not pending:
                    return
                chosen = pending[: max(1, int(batch_size))]
                self.embeddings.encode([self.grid.tile(t) for t in chosen], plane=p, background=True)
                done = total - len(pending) + len(chosen)
                self.events.embedding_progress.emit(done, total)
                yield done, total
        finally:
            self.background_waiting = False

    def encode_planes(
        self,
        planes=None,
        progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> int:
        """:meth:`iter_encode_planes` driven to the end: ``progress(done, total)`` after each batch,
        :class:`~napari_sam.embeddings.embedder.Cancelled` when ``should_stop()`` answers True. Returns the
        tiles encoded.
        """
        if should_stop is not None and should_stop():
            raise Cancelled("stopped before the first tile")
        steps = self.iter_encode_planes(planes)
        done = 0
        try:
            for _, done, total in steps:
                if progress is not None:
                    progress(done, total)
                if should_stop is not None and done < total and should_stop():
                    raise Cancelled(f"stopped after {done} of {total} tiles")
        finally:
            steps.close()
        return done
