"""Image embeddings of windows: encoded on demand in batches, kept in a bounded in-memory cache.

The persistent, tiled zarr store of large images builds on the same interface (``get`` and
``encode``).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

import torch

from .image import PreparedImage
from .models.loading import SamModel
from .preprocess import window_input
from .windows import Window

ProgressCallback = Callable[[int, int], None]


class Cancelled(Exception):
    """Raised inside a long job when its ``should_stop`` callback answers True."""


class WindowEmbeddings:
    """Embeddings of windows of one image for one model, least recently used dropped first.

    Parameters
    ----------
    model
        The loaded model (its device is where encoding runs).
    image
        The prepared image the windows cut.
    capacity
        How many (1, 256, 64, 64) embeddings to keep (4 MiB each in float32).
    batch_size
        Windows per encoder forward pass.
    """

    def __init__(self, model: SamModel, image: PreparedImage, capacity: int = 128, batch_size: int = 4) -> None:
        self.model = model
        self.image = image
        self.capacity = capacity
        self.batch_size = batch_size
        self._cache: OrderedDict[Window, torch.Tensor] = OrderedDict()
        self.encoded_count = 0  # forward passes' windows, for tests and benchmarks

    def __contains__(self, window: Window) -> bool:
        return window in self._cache

    def __len__(self) -> int:
        return len(self._cache)

    def put(self, window: Window, embedding: torch.Tensor) -> None:
        self._cache[window] = embedding
        self._cache.move_to_end(window)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)

    def get(self, window: Window) -> torch.Tensor:
        """(1, 256, h, w) embedding of ``window``, encoding it if needed."""
        if window not in self._cache:
            self.encode([window])
        self._cache.move_to_end(window)
        return self._cache[window]

    @torch.inference_mode()
    def encode(self, windows: Iterable[Window], progress: ProgressCallback | None = None,
               should_stop: Callable[[], bool] | None = None) -> None:
        """Encode the windows not cached yet, ``batch_size`` per forward pass."""
        todo = [w for w in dict.fromkeys(windows) if w not in self._cache]
        net = self.model.network
        for start in range(0, len(todo), self.batch_size):
            if should_stop is not None and should_stop():
                raise Cancelled(f"stopped after {start} of {len(todo)} windows")
            batch = todo[start:start + self.batch_size]
            x = torch.cat([window_input(self.image, w, self.model.spec, self.model.device) for w in batch])
            emb = net.image_encoder(x)
            for i, window in enumerate(batch):
                self.put(window, emb[i:i + 1].clone())
            self.encoded_count += len(batch)
            if progress is not None:
                progress(min(start + self.batch_size, len(todo)), len(todo))
