"""Image embeddings of windows: encoded on demand in batches, kept in a bounded in-memory cache, and —
for the tiles of a large image or stack — written to and read from a persistent
:class:`~napari_sam.embeddings.store.EmbeddingStore`.

Keys are (plane, window); a 2D image is plane 0.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch

from napari_sam.embeddings.encoder import iter_encode, run_with_callbacks
from napari_sam.geometry.windows import Window
from napari_sam.image.normalize import PreparedImage
from napari_sam.models.loading import SamModel

ProgressCallback = Callable[[int, int], None]


class Cancelled(Exception):
    """Raised inside a long job when its ``should_stop`` callback answers True."""


class WindowEmbeddings:
    """Embeddings of windows of one image (or of the planes of a stack) for one model.

    Parameters
    ----------
    model
        The loaded model (its device is where encoding runs).
    image
        The prepared image the windows cut, or ``plane -> PreparedImage`` for a stack.
    capacity
        How many (1, 256, 64, 64) float32 embeddings to keep in memory (4 MiB each), least recently
        used dropped first.
    batch_size
        Windows per encoder forward pass.
    grid
        The :class:`~napari_sam.geometry.tiling.TileGrid` whose tiles live in ``store``.
    store
        Persistent tile embeddings (P planes × T tiles of ``grid``); tiles are read from it and
        written to it when encoded. Other windows (zoom, seam-centred) stay in memory only.

    Several threads may ask for the same window at once (a preview worker and the next prompt's): it is
    encoded once, the others wait for it.
    """

    def __init__(
        self,
        model: SamModel,
        image: PreparedImage | Callable[[int], PreparedImage],
        capacity: int = 128,
        batch_size: int = 4,
        *,
        grid=None,
        store=None,
    ) -> None:
        self.model = model
        self._image_for = (
            image if callable(image) and not isinstance(image, PreparedImage) else (lambda p: image)
        )
        self.capacity = capacity
        self.batch_size = batch_size
        self.grid = grid
        self.store = store
        self._cache: OrderedDict[tuple[int, Window], torch.Tensor] = OrderedDict()
        self._lock = threading.RLock()
        self._in_flight: dict[tuple[int, Window], threading.Event] = {}  # being encoded by some thread
        self._foreground = 0  # encodes a prompt waits for: background encoding pauses while any runs
        self._quiet = threading.Condition(self._lock)
        self.last_prompt = float("-inf")  # time.monotonic() when the last foreground encode or pause ended
        self.encoded_count = 0  # windows through the encoder, for tests and benchmarks

    @property
    def image(self) -> PreparedImage:
        """The image of plane 0 (2D images)."""
        return self._image_for(0)

    def __contains__(self, window) -> bool:
        key = window if isinstance(window, tuple) else (0, window)
        return key in self._cache

    def __len__(self) -> int:
        return len(self._cache)

    def put(self, window: Window, embedding: torch.Tensor, plane: int = 0) -> None:
        with self._lock:
            self._cache[(plane, window)] = embedding
            self._cache.move_to_end((plane, window))
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)

    def _tile_index(self, window: Window) -> int | None:
        if self.grid is None or self.store is None:
            return None
        return self.grid.index_of(window)

    def available(self, window: Window, plane: int = 0) -> bool:
        """Whether :meth:`get` can answer ``window`` on ``plane`` without running the encoder (in memory,
        or finished in the store).
        """
        if (plane, window) in self._cache:
            return True
        t = self._tile_index(window)
        return t is not None and self.store.is_done(plane, t)

    def get(self, window: Window, plane: int = 0) -> torch.Tensor:
        """(1, 256, h, w) embedding of ``window`` on ``plane`` (on the model's device), from memory, from
        the store, or encoded now.
        """
        key = (plane, window)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        t = self._tile_index(window)
        stored = self.store.read(plane, t) if t is not None else None  # None: missing or failed its check
        if stored is not None:
            emb = torch.from_numpy(stored.astype(np.float32))[None].to(self.model.device)
            self.put(window, emb, plane)
            return emb
        self.encode([window], plane=plane)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        return self.get(window, plane)  # dropped from a full cache meanwhile: read or encode again

    def encode(
        self,
        windows: Iterable[Window],
        progress: ProgressCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
        plane: int = 0,
        background: bool = False,
    ) -> int:
        """Encode the windows that are neither in memory nor finished in the store, ``batch_size`` per
        forward pass; grid tiles are also written to the store. Returns how many this call encoded
        (windows another thread is encoding are waited for, not encoded twice).

        A ``background`` call first waits until no other (foreground) call is encoding: a prompt's
        window is never queued behind background tiles for more than the batch already running.

        Raises :class:`Cancelled` when ``should_stop()`` answers True between batches.
        """
        if background:
            with self._quiet:
                while self._foreground:
                    self._quiet.wait(0.05)
                    if should_stop is not None and should_stop():
                        raise Cancelled("stopped while a prompt's window was encoded")
            return self._encode(windows, progress, should_stop, plane, keep=False)
        with self._lock:
            self._foreground += 1
        try:
            return self._encode(windows, progress, should_stop, plane)
        finally:
            with self._quiet:
                self._foreground -= 1
                self.last_prompt = time.monotonic()
                self._quiet.notify_all()

    def pause_background(self) -> Callable[[], None]:
        """Pause background encoding (between its batches) until the returned ``release()`` is called
        (calling it again does nothing). A prompt answered in stages holds this from its first stage to
        its last, so a background tile does not slip into the gap between its quick answer and its zoom
        window's encoder run.
        """
        with self._lock:
            self._foreground += 1
        released = threading.Event()

        def release() -> None:
            with self._quiet:
                if not released.is_set():
                    released.set()
                    self._foreground -= 1
                    self.last_prompt = time.monotonic()
                    self._quiet.notify_all()

        return release

    def _encode(self, windows, progress, should_stop, plane, keep: bool = True) -> int:
        wanted = list(dict.fromkeys(windows))
        encoded = 0
        while True:
            with self._lock:
                todo = [w for w in wanted if not self.available(w, plane)]
                mine = [w for w in todo if (plane, w) not in self._in_flight]
                theirs = [self._in_flight[(plane, w)] for w in todo if (plane, w) in self._in_flight]
                for w in mine:
                    self._in_flight[(plane, w)] = threading.Event()
            if not todo:
                return encoded
            try:
                if should_stop is not None and should_stop():
                    raise Cancelled(f"stopped after {encoded} of {encoded + len(todo)} windows")
                if mine:
                    encoded += run_with_callbacks(
                        self._iter_encode(mine, plane, keep), len(mine), progress, should_stop, Cancelled
                    )
            finally:
                with self._lock:
                    for w in mine:
                        self._in_flight.pop((plane, w)).set()
            wanted = [w for w in wanted if w not in mine]  # done (even if a full cache dropped them)
            for event in theirs:  # then check again: a thread that was cancelled left its windows to us
                event.wait()

    def _iter_encode(self, windows: list[Window], plane: int, keep: bool = True) -> Iterator[int]:
        done = 0
        image = self._image_for(plane)
        for batch, emb in iter_encode(self.model, image, windows, self.batch_size):
            tiles = [self._tile_index(w) for w in batch]
            if self.store is not None and any(t is not None for t in tiles):
                stored = [(t, i) for i, t in enumerate(tiles) if t is not None]
                values = emb[[i for _, i in stored]].numpy().astype(self.store.dtype)
                self.store.write(plane, [t for t, _ in stored], values)
                emb = emb.clone()
                for j, (_, i) in enumerate(stored):  # serve exactly what a reopened cache serves
                    emb[i] = torch.from_numpy(values[j].astype(np.float32))
            for i, window in enumerate(batch):
                if keep or tiles[i] is None:  # background tiles go to the store only (memory stays flat)
                    self.put(window, emb[i : i + 1].to(self.model.device), plane)
            self.encoded_count += len(batch)
            done += len(batch)
            yield done

    def pending_tiles(self, plane: int, tiles: Iterable[int] | None = None) -> list[int]:
        """The grid tiles of ``plane`` (all, or those in ``tiles``) not finished in the store."""
        if self.grid is None or self.store is None:
            raise ValueError("tiles need a grid and a store: set_image(..., cache=path) or a tiled image")
        return [
            t for t in (range(len(self.grid)) if tiles is None else tiles) if not self.store.is_done(plane, t)
        ]

    def iter_encode_tiles(
        self, plane: int, tiles: Iterable[int] | None = None, keep_in_memory: bool = False
    ) -> Iterator[tuple[int, int]]:
        """Encode the grid tiles of ``plane`` not finished in the store; yields (done, total) after each
        batch. Without ``keep_in_memory`` the embeddings only go to the store (memory stays flat).
        """
        todo = self.pending_tiles(plane, tiles)
        total = len(todo)
        if total == 0:
            return
        windows = [self.grid.tile(t) for t in todo]
        done = 0
        for batch, emb in iter_encode(self.model, self._image_for(plane), windows, self.batch_size):
            idx = [self.grid.index_of(w) for w in batch]
            values = emb.numpy().astype(self.store.dtype)
            self.store.write(plane, idx, values)
            if keep_in_memory:
                for i, window in enumerate(batch):
                    self.put(
                        window,
                        torch.from_numpy(values[i : i + 1].astype(np.float32)).to(self.model.device),
                        plane,
                    )
            self.encoded_count += len(batch)
            done += len(batch)
            yield done, total

    def encode_tiles(
        self,
        plane: int,
        tiles: Iterable[int] | None = None,
        progress: ProgressCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> int:
        """:meth:`iter_encode_tiles` with ``progress(done, total)`` and ``should_stop()`` callbacks;
        returns how many tiles were encoded. Raises :class:`Cancelled` when stopped (finished tiles stay
        in the store).
        """
        pending = self.pending_tiles(plane, tiles)
        if should_stop is not None and pending and should_stop():
            raise Cancelled(f"stopped after 0 of {len(pending)} tiles")
        steps = (done for done, _ in self.iter_encode_tiles(plane, pending))
        return run_with_callbacks(steps, len(pending), progress, should_stop, Cancelled)
