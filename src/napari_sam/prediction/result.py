"""The answer to a prompt: masks over the image, predicted IoU and the decoder's low-res logits."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from napari_sam.geometry.windows import Window


@dataclass
class Prediction:
    """Masks for K objects (one per box, or one for a point prompt), M candidates each.

    Masks are stored as crops over each object's window (``crops[k]`` is (M, h, w) bool placed at
    ``offsets[k]`` = (row, col)), so large images never hold full-size masks unless asked.

    Attributes
    ----------
    scores
        (K, M) float32 predicted IoU.
    logits
        (K, M, 256, 256) float32 low-resolution logits in the frame of ``windows[k]``; feed one back as
        ``mask_input`` to refine.
    windows
        The window each object was answered from.
    image_shape
        (H, W) of the image.
    """

    crops: list[np.ndarray]
    offsets: list[tuple[int, int]]
    scores: np.ndarray
    logits: np.ndarray
    windows: list[Window]
    image_shape: tuple[int, int]
    _full: np.ndarray | None = field(default=None, repr=False)

    @property
    def masks(self) -> np.ndarray:
        """Full-resolution masks: (K, H, W) bool for single-mask output, (K, M, H, W) for multimask.

        A single object with one candidate gives (1, H, W).
        """
        if self._full is None:
            k, m = self.scores.shape
            full = np.zeros((k, m, *self.image_shape), dtype=bool)
            for i, (crop, (r, c)) in enumerate(zip(self.crops, self.offsets)):
                full[i, :, r : r + crop.shape[1], c : c + crop.shape[2]] = crop
            self._full = full[:, 0] if m == 1 else full
        return self._full

    @property
    def num_candidates(self) -> int:
        return int(self.scores.shape[1])

    def best_index(self, k: int = 0) -> int:
        """Index of the candidate with the highest predicted IoU for object ``k``."""
        return int(np.argmax(self.scores[k]))

    def mask(self, k: int = 0, candidate: int | None = None) -> np.ndarray:
        """(H, W) bool mask of object ``k``, candidate ``candidate`` (default: best predicted IoU)."""
        m = self.best_index(k) if candidate is None else candidate
        out = np.zeros(self.image_shape, dtype=bool)
        crop = self.crops[k][m]
        r, c = self.offsets[k]
        out[r : r + crop.shape[0], c : c + crop.shape[1]] = crop
        return out
