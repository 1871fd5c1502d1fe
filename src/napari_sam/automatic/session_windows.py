"""The annotator's embeddings, lent to the automatic mode.

``segment_everything(segmenter=seg)`` segments the image of a :class:`~napari_sam.segmenter.Segmenter`
with the session's own :class:`~napari_sam.embeddings.embedder.WindowEmbeddings`: a window the session
has embedded already (the whole image, a tile of its grid in the persistent store, a zoom window in
memory) is not encoded again, and the windows the automatic mode encodes stay in the session for the
prompts that follow.
"""

from __future__ import annotations

import torch

from napari_sam.embeddings.embedder import WindowEmbeddings
from napari_sam.geometry.windows import Window


class SessionWindows:
    """``get(window)`` for the automatic mode, answered by a session's embeddings.

    Parameters
    ----------
    embeddings
        The session's window embeddings (memory, persistent tile store, encoder).
    plane
        The plane of the session's image the automatic mode segments.
    offset
        (row, col) of the automatic mode's image (a tile of a very large image) in the session's image:
        its windows are shifted by it.
    """

    def __init__(
        self, embeddings: WindowEmbeddings, plane: int = 0, offset: tuple[int, int] = (0, 0)
    ) -> None:
        self._embeddings = embeddings
        self._plane = plane
        self._offset = (int(offset[0]), int(offset[1]))
        self._before = embeddings.encoded_count

    @property
    def encoded_count(self) -> int:
        """Windows the session's encoder ran for since this view was made."""
        return self._embeddings.encoded_count - self._before

    def get(self, window: Window) -> torch.Tensor:
        """(1, C, h, w) embedding of ``window`` (pixels of the automatic mode's image)."""
        r, c = self._offset
        return self._embeddings.get(Window(window.row0 + r, window.col0 + c, window.size), self._plane)
