"""Propagating one object through a (Z, Y, X) or (T, Y, X) stack.

From the plane where the object was segmented, each next plane is prompted with the previous plane's
mask: its bounding box (grown by a few pixels, so the object may grow) and, when the next plane is
answered from the same window, the previous low-res logits as SAM's mask prompt. Propagation stops
in a direction at the first plane where the mask is empty, the predicted IoU falls below
``min_iou``, SAM's stability score below ``min_stability`` (the model is guessing: the object has
ended), or the overlap with the previous plane's mask (intersection over the smaller one) below
``min_overlap`` (the answer jumped to another object).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from napari_sam.geometry.coords import mask_bbox
from napari_sam.prediction.result import Prediction
from napari_sam.prediction.scores import stability_score


def mask_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller mask: 1 when one contains the other (an object that shrinks or
    grows between planes), 0 when they are disjoint (the answer jumped to something else).
    """
    smaller = min(int(a.sum()), int(b.sum()))
    return float(np.logical_and(a, b).sum() / smaller) if smaller else 0.0


def stability(logits: np.ndarray, offset: float = 1.0) -> float:
    """SAM's stability score of one (h, w) logit map (see
    :func:`napari_sam.prediction.scores.stability_score`). Near 1 for a crisp object, low where the model
    is guessing (e.g. a plane without the object).
    """
    return float(stability_score(logits, 0.0, offset))


def grow_box(
    bbox_rc, image_shape: tuple[int, int], fraction: float = 0.0, pixels: int = 2
) -> tuple[int, ...]:
    """``bbox_rc`` grown by ``fraction`` of its extent plus ``pixels`` on every side, kept in the image."""
    r0, c0, r1, c1 = bbox_rc
    dr = int(round(fraction * (r1 - r0 + 1))) + pixels
    dc = int(round(fraction * (c1 - c0 + 1))) + pixels
    h, w = image_shape
    return max(r0 - dr, 0), max(c0 - dc, 0), min(r1 + dr, h - 1), min(c1 + dc, w - 1)


def _fills(found, box, image_shape: tuple[int, int], margin: int = 1) -> bool:
    """Whether a mask's bbox ``found`` reaches an edge of its prompt ``box`` that is not the image's."""
    h, w = image_shape
    return (
        (found[0] <= box[0] + margin and box[0] > 0)
        or (found[1] <= box[1] + margin and box[1] > 0)
        or (found[2] >= box[2] - margin and box[2] < h - 1)
        or (found[3] >= box[3] - margin and box[3] < w - 1)
    )


def propagate(
    predict: Callable[..., Prediction],
    start_mask: np.ndarray,
    start_plane: int,
    num_planes: int,
    *,
    start_prediction: Prediction | None = None,
    window_for: Callable | None = None,
    direction: str = "both",
    min_iou: float = 0.5,
    min_overlap: float = 0.5,
    min_stability: float = 0.8,
    max_planes: int | None = None,
    use_mask_prompt: bool = True,
    regrow: int = 2,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[int, np.ndarray]:
    """Follow one object from ``start_plane`` through neighbouring planes.

    Parameters
    ----------
    predict
        ``predict(box=..., mask_input=..., plane=q) -> Prediction`` (a :class:`Segmenter`'s).
    start_mask
        (H, W) bool mask of the object on ``start_plane``.
    start_prediction
        The :class:`Prediction` that made ``start_mask``, if any (its logits seed the mask prompt).
    window_for
        ``window_for(box) -> Window``: the window ``predict`` answers a box from; the previous logits are
        a mask prompt only when it is the previous plane's window.
    direction
        ``"both"``, ``"forward"`` (increasing plane index) or ``"backward"``.
    min_iou
        Stop where the model's predicted IoU of the best candidate is below this.
    min_overlap
        Stop where the mask's overlap (intersection over the smaller mask) with the previous plane's mask
        is below this (the object moved away or the answer jumped).
    min_stability
        Stop where the stability score of the best candidate's logits is below this.
    max_planes
        At most this many planes in each direction (default: to the end of the stack).
    use_mask_prompt
        Pass the previous plane's logits as SAM's mask prompt when the window is the same.
    regrow
        How many times a box is widened (by 15 %) when the mask fills it (a growing object).

    Returns
    -------
    dict[int, numpy.ndarray]
        Plane index → (H, W) bool mask, the start plane included, in plane order.
    """
    steps = {"both": (1, -1), "forward": (1,), "backward": (-1,)}
    if direction not in steps:
        raise ValueError(f"direction must be 'both', 'forward' or 'backward'; got {direction!r}")
    start_mask = np.asarray(start_mask, dtype=bool)
    if mask_bbox(start_mask) is None:
        raise ValueError("the start mask is empty: segment the object on this plane first")
    out = {start_plane: start_mask}
    limit = num_planes if max_planes is None else max_planes
    total = sum(
        min(limit, (num_planes - 1 - start_plane) if d > 0 else start_plane) for d in steps[direction]
    )
    done = 0
    for d in steps[direction]:
        prev_mask, prev_pred = start_mask, start_prediction
        q = start_plane + d
        while 0 <= q < num_planes and abs(q - start_plane) <= limit:
            if should_stop is not None and should_stop():
                return dict(sorted(out.items()))
            box = grow_box(mask_bbox(prev_mask), start_mask.shape)
            for _ in range(1 + regrow):  # a mask filling its box: the object grew, widen the box
                same_window = (
                    window_for is not None
                    and prev_pred is not None
                    and window_for(box) == prev_pred.windows[0]
                )
                pred = predict(
                    box=box, plane=q, mask_input=prev_pred if use_mask_prompt and same_window else None
                )
                found = mask_bbox(pred.mask(0))
                if found is None or not _fills(found, box, start_mask.shape):
                    break
                box = grow_box(box, start_mask.shape, fraction=0.15)
            k = pred.best_index(0)
            mask = pred.mask(0, k)
            done += 1
            if progress is not None:
                progress(done, total)
            if (
                not mask.any()
                or float(pred.scores[0, k]) < min_iou
                or stability(pred.logits[0, k]) < min_stability
                or mask_overlap(mask, prev_mask) < min_overlap
            ):
                break
            out[q] = mask
            prev_mask, prev_pred = mask, pred
            q += d
    return dict(sorted(out.items()))


class Propagator:
    """Propagation for a :class:`~napari_sam.segmenter.Segmenter` (held as its ``propagator``): follows
    an object of the segmenter's stack through its planes with the segmenter's ``predict``.

    Parameters
    ----------
    segmenter
        The session whose image (a stack), prediction and zoom windows are used.
    """

    def __init__(self, segmenter) -> None:
        self._seg = segmenter

    def propagate(
        self,
        mask_or_prediction: Prediction | np.ndarray | None = None,
        *,
        plane: int | tuple[int, ...] | None = None,
        direction: str = "both",
        min_iou: float = 0.5,
        min_overlap: float = 0.5,
        min_stability: float = 0.8,
        max_planes: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> dict[int, np.ndarray]:
        """Follow one object from ``plane`` through the stack (see :func:`propagate`).

        Parameters
        ----------
        mask_or_prediction
            The object on ``plane``: a :class:`Prediction` (its best candidate of object 0), an (H, W)
            bool mask, or None for the segmenter's last prediction.
        plane
            Where the object is (default: the prediction's plane, else the plane in view).

        Returns
        -------
        dict[int, numpy.ndarray]
            Plane → (H, W) bool mask, the start plane included.
        """
        seg = self._seg
        num_planes = seg.num_planes
        item = seg.last_prediction if mask_or_prediction is None else mask_or_prediction
        if item is None:
            raise ValueError("nothing to propagate: predict() on a plane first or pass a mask")
        pred = item if isinstance(item, Prediction) else None
        if plane is None:
            plane = getattr(pred, "plane", None) if pred is not None else None
            plane = seg.plane if plane is None else plane
        plane = seg.plane_index(plane)
        mask = pred.mask(0) if pred is not None else np.asarray(item, dtype=bool)
        if mask.shape != seg.image_shape:
            raise ValueError(f"mask shape {mask.shape} does not match a plane's {seg.image_shape}")
        return propagate(
            seg.predict,
            mask,
            plane,
            num_planes,
            start_prediction=pred,
            window_for=lambda box: seg.window_for_box(box),
            direction=direction,
            min_iou=min_iou,
            min_overlap=min_overlap,
            min_stability=min_stability,
            max_planes=max_planes,
            progress=progress,
            should_stop=should_stop,
        )
