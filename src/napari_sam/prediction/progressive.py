"""One prompt answered in stages: a quick answer from the embeddings already computed, then the final one.

A new object's zoom window is not embedded yet (about a second of encoder time on a CPU). A front end
wants the whole image's (or the tile's) answer at once, then the zoom window's when it is ready, and to
drop the rest when the user has moved on. :class:`ProgressivePrediction` is that one call: it validates
the prompts once, runs a box-trained model's click → box search (:mod:`napari_sam.prediction.point_box`)
and the first answer once, and yields a quick :class:`Stage` then the final one. Between steps it polls a
stop check; :meth:`ProgressivePrediction.cancel` ends it at the next step.

The steps (K objects, windows as chosen by :meth:`napari_sam.segmenter.Segmenter.window_for_box`):

1. box-trained model and clicks only: the box search on the whole image (or the tile under the clicks);
2. quick: boxes decoded in the whole image (or their tiles), points decoded in the window under them;
   skipped when the final windows are embedded already (the final answer is as fast) or when the quick
   windows are not (it would not be quick);
3. final: the zoom windows encoded (windows another thread is encoding are waited for) and decoded.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from napari_sam.embeddings.embedder import Cancelled
from napari_sam.geometry.coords import as_boxes_rc, mask_bbox
from napari_sam.geometry.steps import stepped_side
from napari_sam.geometry.tiling import click_search_window, clipped_by, tile_holding
from napari_sam.geometry.windows import Window, ZoomRule, centred_window
from napari_sam.prediction.outline import WEAK_OUTLINE, outline_contrast
from napari_sam.prediction.point_box import pick_answer, search_boxes
from napari_sam.prediction.result import Prediction

if TYPE_CHECKING:
    import torch

    from napari_sam.segmenter import Segmenter

HOLDS_SHARE = 0.8  # a piece lies inside the larger answer that replaces it (this share of its pixels)


@dataclass(frozen=True)
class Stage:
    """One answer of a :class:`ProgressivePrediction`.

    Attributes
    ----------
    prediction
        The masks of this stage (its ``plane`` set).
    final
        False for the quick answer (whole image or tile: coarser), True for the last one.
    seconds
        Time this stage took (including the box search and the encoder runs it needed).
    encoded
        Windows the encoder ran on for this stage (0: decoder passes only).
    searched
        Whether this stage ran the click → box search (a batch of decoder passes).
    """

    prediction: Prediction
    final: bool
    seconds: float
    encoded: int
    searched: bool = False


@dataclass
class Request:
    """Validated prompts of one call, in image pixels (row, col); see :meth:`Segmenter.predict`."""

    points: np.ndarray | None  # (N, 2) float
    labels: np.ndarray | None  # (N,) int64 of 1/0
    boxes: np.ndarray | None  # (K, 4) float
    window: Window | None  # the mask prompt's window, if any
    mask_logits: torch.Tensor | None  # (1, 1, 256, 256) mask prompt
    multimask: bool
    plane: int
    grow_from: tuple | None = None  # a refined object's box: the searched box is grown to hold it
    answer: Prediction | None = None  # the answer itself, no decoding (a refined object's own mask)


class ProgressivePrediction:
    """The stages of one prompt (see the module text); iterate it, or call :meth:`result`.

    Made by :meth:`napari_sam.segmenter.Segmenter.predict_progressive`, which validates the prompts
    (``ValueError`` there, not here).

    Parameters
    ----------
    segmenter
        The session whose image, embeddings and model answer.
    request
        The validated prompts.
    zoom
        The zoom rule for the final answer.
    quick
        Whether to yield a quick stage before a final one that needs the encoder.
    should_stop
        Polled between steps and between encoder batches; True ends the iteration (:attr:`cancelled`).

    Attributes
    ----------
    quick, final
        The quick and the final :class:`~napari_sam.prediction.result.Prediction` once computed.
    cancelled
        Whether it stopped before the final answer.
    """

    def __init__(
        self,
        segmenter: Segmenter,
        request: Request,
        zoom: ZoomRule,
        *,
        quick: bool = True,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self._seg = segmenter
        self.request = request
        self._zoom = zoom
        self._want_quick = quick
        self._should_stop = should_stop
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one step at a time, whichever thread drives it
        self._boxes = request.boxes
        self._points, self._labels = request.points, request.labels
        self._searched = not segmenter.needs_box_search(request.points, request.boxes, request.window)
        if not self._searched and (request.labels == 0).all():
            self._searched = True  # no positive point: nothing to search around
        if self._searched:
            self._settle_points()
        if request.answer is not None:
            self._searched = True
        self._quick_done = not quick
        self._first: Prediction | None = None  # points: the first answer (quick stage), and its window
        self.quick: Prediction | None = None
        self.final: Prediction | None = None
        self.cancelled = False
        self._release_background: Callable[[], None] | None = None
        self._guess: Window | None | bool = False  # see _guess_window (False: not decided yet)

    # -- what the next step needs --------------------------------------------------------------------
    @property
    def plane(self) -> int:
        return self.request.plane

    @property
    def done(self) -> bool:
        """Whether the final answer is computed or the prediction was cancelled."""
        return self.final is not None or self.cancelled

    @property
    def ready(self) -> bool:
        """Whether the next stage needs only decoder passes on embeddings already computed — no box
        search, no encoder run: fast enough for a UI's main thread.
        """
        if self.done:
            return True
        if not self._searched:
            return False
        windows = self._quick_windows() if not self._quick_done else None
        if windows is not None and self._available(windows):
            return True
        return self._available(self._final_windows_known())

    def cancel(self) -> None:
        """Stop at the next step (an encoder batch already running finishes first)."""
        self._stop.set()
        self._resume_background()

    def _resume_background(self) -> None:
        if self._release_background is not None:
            self._release_background()

    def _stopped(self) -> bool:
        return self._stop.is_set() or (self._should_stop is not None and self._should_stop())

    # -- iteration ---------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Stage]:
        return self

    def __next__(self) -> Stage:
        with self._lock:
            if self.done:
                self._resume_background()
                raise StopIteration
            if self._release_background is None:  # background tiles wait until the final answer
                self._release_background = self._seg.embeddings.pause_background()
                weakref.finalize(self, self._release_background)  # also if it is dropped unfinished
            started = time.perf_counter()
            encoded_before = self._seg.embeddings.encoded_count
            searched_before = self._searched
            try:
                stage = self._step()
            except Cancelled:
                stage = None
            if stage is None:  # stopped between steps
                self.cancelled = True
                self._resume_background()
                raise StopIteration
            prediction, final = stage
            prediction.plane = self.plane
            if final:
                self.final = prediction
                self._seg.last_prediction = prediction
                self._resume_background()
            else:
                self.quick = prediction
            out = Stage(
                prediction,
                final,
                time.perf_counter() - started,
                max(0, self._seg.embeddings.encoded_count - encoded_before),
                not searched_before,
            )
        self._seg.events.predicted.emit(out)
        return out

    def result(self) -> Prediction:
        """Drive it to the end and return the final answer (:class:`Cancelled` if it was stopped)."""
        for _ in self:
            pass
        if self.final is None:
            raise Cancelled("the prediction was cancelled before its final answer")
        return self.final

    def _step(self) -> tuple[Prediction, bool] | None:
        if self._stopped():
            return None
        if not self._searched:
            self._search()
            self._searched = True
            self._settle_points()
            if self._stopped():
                return None
        if self.request.answer is not None:
            return self.request.answer, True
        if not self._quick_done:
            self._quick_done = True
            quick = self._quick_stage()
            if quick is not None:
                return quick
            if self._stopped():
                return None
        return self._final_stage(), True

    # -- the steps ---------------------------------------------------------------------------------
    def _available(self, windows: list[Window] | None) -> bool:
        if self.request.answer is not None:
            return True
        if windows is None:
            return False
        return all(self._seg.embeddings.available(w, self.plane) for w in windows)

    def _settle_points(self) -> None:
        """Box-trained models: points go once a box is known (they only located it)."""
        if self._points is not None and self._boxes is not None and self._seg.model.spec.box_prompts_only:
            self._points = self._labels = None

    def _first_window(self) -> Window:
        """The window a click's box is searched in: the zoom window an object of the typical size under
        the positive points would get (:meth:`_guess_window`), else the tile that holds them (the whole
        image when it is one window).
        """
        seg = self._seg
        pts, lab = self._points, self._labels
        positives = pts[lab == 1] if (lab == 1).any() else pts
        guess = self._guess_window(positives)
        return tile_holding(seg.grid, positives) if guess is None else guess

    def _guess_window(self, positives: np.ndarray) -> Window | None:
        """The zoom window an object of the typical extent
        (:meth:`~napari_sam.segmenter.Segmenter.typical_extent`) centred on the clicks would get, where
        :func:`~napari_sam.geometry.tiling.click_search_window` takes it; decided once; None: the tile.

        The box is searched there, at the object's scale, rather than in the tile, whether or not the
        tile is embedded: in a 512² image seen whole at half resolution a nucleus spans about 8 model
        pixels, and the search's answers spill over its neighbours (session clicks on the innermost
        pixels of 24 nuclei, mean IoU, whole image → zoom window: original 0.630 → 0.743, H&E-like
        0.544 → 0.713, low SNR 0.503 → 0.564). Where the tile is not embedded it also saves an encoder
        pass (the tile's, then the zoom window's); the final stage answers from this window when the
        box found gets a window of the same size (:meth:`_zoom_windows`).
        """
        if self._guess is not False:
            return self._guess
        self._guess = None
        seg = self._seg
        if self._boxes is not None or not self._zoom.enabled:
            return None
        r, c = positives.mean(axis=0)
        extent = seg.typical_extent(self.plane, (r, c))
        window, zoomed = click_search_window(positives, extent, seg.grid, self._zoom, seg.model.input_size)
        if zoomed:
            self._guess = window
        return self._guess

    def _zoom_windows(self) -> list[Window]:
        """The final windows of the boxes; a box whose zoom window has the side of the guessed window
        (:meth:`_guess_window`), and lies in it with a margin of an eighth of its side, is answered from
        the guessed window, which is embedded already.
        """
        windows = [self._seg.window_for_box(b, self._zoom) for b in self._boxes]
        guess = self._guess if isinstance(self._guess, Window) else None
        if guess is not None:
            margin = guess.size / 8
            windows = [
                guess
                if w.size == guess.size
                and guess.contains_box((b[0] - margin, b[1] - margin, b[2] + margin, b[3] + margin))
                else w
                for w, b in zip(windows, self._boxes)
            ]
        return windows

    def _search(self) -> None:
        """A box-trained model's clicks → the box of the object under them, once.

        Searched at a typical object's scale (:meth:`_first_window`), an answer whose outline shows no
        edge (:func:`~napari_sam.prediction.outline.outline_contrast` under ``WEAK_OUTLINE``) may be a
        piece of a larger object (a large nucleus among small ones): the search runs again in the tile,
        and its answer replaces the piece where it holds the piece (:func:`_holds`) and its own outline
        lies on an edge.
        """
        pts, lab = self._points, self._labels
        positives, negatives = pts[lab == 1], pts[lab == 0]
        first = self._first_window()
        found = self._search_in(first, positives, negatives)
        if found is not None and isinstance(self._guess, Window):
            tile = tile_holding(self._seg.grid, positives)
            gray, origin = self._gray(tile)
            if _outline_contrast(gray, origin, *found) < WEAK_OUTLINE:
                wider = self._search_in(tile, positives, negatives)
                if (
                    wider is not None
                    and _holds(wider, found)
                    and _outline_contrast(gray, origin, *wider) >= WEAK_OUTLINE
                ):
                    found = wider
        box = None if found is None else _placed_bbox(*found)
        grow = self.request.grow_from
        if grow is not None:  # a correction: the object's box grown to hold the object under the clicks
            box = grow if box is None else _union(box, grow)
        if box is not None:
            self._boxes = as_boxes_rc(box)

    def _gray(self, window: Window) -> tuple[np.ndarray, tuple[int, int]]:
        """The display gray of ``window``'s part of the image, (h, w) float32, and the image (row, col) of
        its top-left pixel.
        """
        r0, c0 = max(window.row0, 0), max(window.col0, 0)
        r1, c1 = window.row0 + window.size, window.col0 + window.size  # region() clips to the image
        return self._seg._require_image().plane(self.plane).region(r0, r1, c0, c1).mean(axis=-1), (r0, c0)

    def _search_in(
        self, window: Window, positives: np.ndarray, negatives: np.ndarray
    ) -> tuple[np.ndarray, tuple[int, int]] | None:
        """The best fitting answer (:func:`~napari_sam.prediction.point_box.pick_answer`) of square
        boxes around the clicks searched in ``window``: its (h, w) bool mask crop and the crop's
        (row, col); None when no answer holds the clicks.
        """
        boxes = search_boxes(positives, max_side=window.size / 2)
        answer = self._seg._decode_group(window, list(boxes), None, None, None, False, self.plane)
        masks = [c[0] for c in answer.crops]
        k = pick_answer(boxes, masks, answer.offsets, answer.scores[:, 0], positives, negatives)
        return None if k is None else (masks[k], tuple(answer.offsets[k]))

    def _quick_windows(self) -> list[Window] | None:
        """The windows of the quick stage, or None when it has none to offer."""
        req, seg = self.request, self._seg
        if req.window is not None:
            return None
        if self._boxes is not None:
            if not self._zoom.enabled:
                return None
            plain = ZoomRule(enabled=False)
            return [seg.window_for_box(b, plain) for b in self._boxes]
        if seg.grid.is_single and not self._zoom.enabled:
            return None
        return [self._first_window()]

    def _final_windows_known(self) -> list[Window] | None:
        """The windows of the final stage where they are known without decoding, else None."""
        req, seg = self.request, self._seg
        if req.window is not None:
            n = 1 if self._boxes is None else len(self._boxes)
            return [req.window] * n
        if self._boxes is not None:
            return self._zoom_windows()
        if seg.grid.is_single and not self._zoom.enabled:
            return [seg.whole_window]
        if self._first is not None:
            window = self._points_window(self._first, cheap=True)
            return None if window is None else [window]
        return None

    def _quick_stage(self) -> tuple[Prediction, bool] | None:
        """The quick answer, or None when there is none to give (then the final stage follows)."""
        windows = self._quick_windows()
        if windows is None:
            return None
        finals = self._final_windows_known()
        if self._boxes is not None:
            if finals == windows or self._available(finals) or not self._available(windows):
                return None
            return self._decode(windows), False
        # points: the first answer tells the object's size, and is the quick answer
        first = self._decode(windows)
        self._first = first
        window = self._points_window(first, cheap=True)
        if window == first.windows[0]:
            return first, True  # no zoom window to go to: this is the final answer
        if window is not None and self._available([window]):
            return None  # the final answer is as quick
        return first, False

    def _final_stage(self) -> Prediction:
        windows = self._final_windows_known()
        if windows is None:  # points whose first answer crossed a tile seam: look again
            windows = [self._points_window(self._first_answer(), cheap=False)]
        missing = [w for w in dict.fromkeys(windows) if not self._seg.embeddings.available(w, self.plane)]
        if missing:
            self._seg.embeddings.encode(missing, should_stop=self._stopped, plane=self.plane)
            if self._stopped():  # the user moved on while the window was encoded: no decoder pass
                raise Cancelled("stopped after encoding the zoom window")
        if self._first is not None and windows == [self._first.windows[0]]:
            return self._first
        return self._decode(windows)

    def _first_answer(self) -> Prediction:
        if self._first is None:
            self._first = self._decode([self._first_window()])
        return self._first

    def _decode(self, windows: list[Window]) -> Prediction:
        req, seg = self.request, self._seg
        if self._boxes is None:
            return seg._decode_group(
                windows[0], [None], self._points, self._labels, req.mask_logits, req.multimask, self.plane
            )
        return seg._decode_many(
            windows, self._boxes, self._points, self._labels, req.mask_logits, req.multimask, self.plane
        )

    def _points_window(self, first: Prediction, cheap: bool) -> Window | None:
        """Zoom for point prompts: the first answer tells the object's size; an object cut by its tile's
        edge is looked at again from a window centred on it (decoder passes, and encoder runs for those
        windows: not ``cheap``; then None when ``cheap``).
        """
        seg = self._seg
        grid, shape = seg.grid, seg.image_shape
        pts, lab = self._points, self._labels
        positives = pts[lab == 1] if (lab == 1).any() else pts
        window = first.windows[0]
        crop = first.crops[0][first.best_index(0)]
        bbox = mask_bbox(crop)
        if bbox is not None:
            r, c = first.offsets[0]
            bbox = (bbox[0] + r, bbox[1] + c, bbox[2] + r, bbox[3] + c)
        for _ in range(2):  # the object crosses a seam: look again, centred on what was found
            if bbox is None or grid.is_single or not clipped_by(window, bbox, shape):
                break
            extent = max(bbox[2] - bbox[0] + 1, bbox[3] - bbox[1] + 1)
            side = max(grid.tile_size, stepped_side(2 * extent, grid.tile_size))
            wider = centred_window(bbox, shape, side)
            if wider == window:
                break
            if cheap:
                return None
            window = wider
            again = seg._decode_group(window, [None], pts, lab, None, False, self.plane)
            found = mask_bbox(again.crops[0][0])
            if found is not None:
                r, c = again.offsets[0]
                bbox = (found[0] + r, found[1] + c, found[2] + r, found[3] + c)
        if bbox is None:  # nothing found at this scale: look closer around the points
            r0, c0 = positives.min(axis=0)
            r1, c1 = positives.max(axis=0)
            bbox = (r0, c0, r1, c1)
        zoomed = seg.window_for_box(bbox, self._zoom)
        if not all(zoomed.contains_box((p[0], p[1], p[0], p[1])) for p in positives):
            return window
        return zoomed


def _outline_contrast(
    gray: np.ndarray, origin: tuple[int, int], mask: np.ndarray, offset: tuple[int, int]
) -> float:
    """The magnitude (either polarity) of :func:`~napari_sam.prediction.outline.outline_contrast` of a
    mask crop at image (row, col) ``offset``, in ``gray``, the display gray of a region whose top-left
    pixel is image pixel ``origin``.
    """
    return abs(outline_contrast(gray, mask, (offset[0] - origin[0], offset[1] - origin[1])))


def _placed_bbox(mask: np.ndarray, offset: tuple[int, int]) -> tuple[int, int, int, int]:
    """The bounding box (image pixels, max inclusive) of a non-empty mask crop placed at ``offset``."""
    r0, c0, r1, c1 = mask_bbox(mask)
    return (r0 + offset[0], c0 + offset[1], r1 + offset[0], c1 + offset[1])


def _holds(outer: tuple[np.ndarray, tuple[int, int]], inner: tuple[np.ndarray, tuple[int, int]]) -> bool:
    """Whether mask crop ``outer`` (mask, (row, col)) is larger than ``inner`` and covers at least
    ``HOLDS_SHARE`` of it.
    """
    (big, (br, bc)), (small, (sr, sc)) = outer, inner
    if big.sum() <= small.sum():
        return False
    r0, c0 = max(br, sr), max(bc, sc)
    r1, c1 = min(br + big.shape[0], sr + small.shape[0]), min(bc + big.shape[1], sc + small.shape[1])
    if r0 >= r1 or c0 >= c1:
        return False
    both = big[r0 - br : r1 - br, c0 - bc : c1 - bc] & small[r0 - sr : r1 - sr, c0 - sc : c1 - sc]
    return both.sum() >= HOLDS_SHARE * small.sum()


def _union(a, b) -> tuple:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
