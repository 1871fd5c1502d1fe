"""Prompts simulated as users give them, in the model input frame (SAM's (x, y) pixels).

* Boxes: the object's box with each side jittered (a hand-drawn box is never exact).
* Click boxes: for box-trained models a click becomes a square box centred on it, searched over sizes
  (:mod:`napari_sam.prediction.point_box`); the decoder is taught the sizes the search keeps, and its
  IoU head to rank every size the search tries.
* Clicks: positive points inside the object, negative ones outside near it, and correction clicks on
  the largest error of the previous answer (SAM's iterative training), for models that take points.

Masks here are (256, 256) bool targets at logit resolution; ``scale`` = input size / 256 maps their
pixels to the model frame.
"""

from __future__ import annotations

import numpy as np
import torch


def jittered_boxes(boxes: np.ndarray, rng: np.random.Generator, jitter: float = 0.1) -> np.ndarray:
    """(B, 4) tight (x0, y0, x1, y1) boxes with every side moved by up to ``jitter`` × the box's side
    (normal, clipped at 2σ) plus up to 2 pixels either way.
    """
    boxes = np.asarray(boxes, dtype=np.float32)
    side = np.maximum(boxes[:, 2:] - boxes[:, :2] + 1, 1.0)
    sigma = np.concatenate([side, side], axis=1) * jitter / 2
    moved = boxes + np.clip(rng.normal(0, 1, boxes.shape), -2, 2) * sigma + rng.uniform(-2, 2, boxes.shape)
    x0 = np.minimum(moved[:, 0], moved[:, 2] - 1)
    y0 = np.minimum(moved[:, 1], moved[:, 3] - 1)
    return np.stack([x0, y0, moved[:, 2], moved[:, 3]], axis=1).astype(np.float32)


def random_inside(mask: torch.Tensor, rng: np.random.Generator, scale: float) -> np.ndarray | None:
    """A random pixel of ``mask`` as model-frame (x, y), or None for an empty mask."""
    rows, cols = np.nonzero(mask.numpy())
    if rows.size == 0:
        return None
    i = int(rng.integers(rows.size))
    return np.array([(cols[i] + 0.5) * scale - 0.5, (rows[i] + 0.5) * scale - 0.5], dtype=np.float32)


def innermost_click(mask: torch.Tensor | np.ndarray, scale: float) -> np.ndarray | None:
    """The pixel of ``mask`` (logit resolution) farthest from its edge, as model-frame (x, y): where a
    user clicks an object. None for an empty mask.
    """
    from napari_sam.geometry.coords import innermost_pixel

    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return None
    row, col = innermost_pixel(m)
    return np.array([(col + 0.5) * scale - 0.5, (row + 0.5) * scale - 0.5], dtype=np.float32)


def click_boxes(
    boxes: np.ndarray,
    targets: torch.Tensor,
    rng: np.random.Generator,
    scale: float,
    sizes: tuple[float, float] = (0.35, 3.0),
    per_click: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """Square boxes centred on a random click inside each object, as the click search tries them
    (:func:`napari_sam.prediction.point_box.search_boxes`): ``per_click`` boxes per click, of sides
    spread over ``sizes[0]``–``sizes[1]`` × the object's extent (one log-uniform draw per equal
    log-size stratum).

    The search tries boxes smaller than the object (their answers are fragments) and larger ones (their
    answers may take in neighbours) and ranks them by the IoU head, so the head must learn to rank the
    answers to one click; only boxes of 1–2× the extent (those the search keeps,
    :func:`~napari_sam.prediction.point_box.pick_answer`) should teach the mask itself.

    Returns
    -------
    boxes
        (B * per_click, 4) float32 (x0, y0, x1, y1) in the model frame, object by object.
    relative_sides
        (B * per_click,) float32 box side / object extent.
    """
    lo, hi = np.log(sizes[0]), np.log(sizes[1])
    edges = np.linspace(lo, hi, per_click + 1)
    out = np.empty((len(boxes) * per_click, 4), dtype=np.float32)
    relative = np.empty(len(boxes) * per_click, dtype=np.float32)
    for b, (box, target) in enumerate(zip(boxes, targets)):
        click = random_inside(target, rng, scale)
        if click is None:
            click = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], dtype=np.float32)
        extent = max(box[2] - box[0] + 1, box[3] - box[1] + 1)
        rel = np.exp(rng.uniform(edges[:-1], edges[1:]))
        half = extent * rel[:, None] / 2
        rows = slice(b * per_click, (b + 1) * per_click)
        out[rows] = np.concatenate([click - half, click + half], axis=1)
        relative[rows] = rel
    return out, relative


def first_clicks(
    targets: torch.Tensor, boxes: np.ndarray, rng: np.random.Generator, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """One positive click inside each object and one negative click just outside it, as (B, 2, 2) (x, y)
    points and (B, 2) labels (1, 0); the negative is padding (-1) half of the time.
    """
    b = len(targets)
    xy = np.zeros((b, 2, 2), dtype=np.float32)
    labels = np.full((b, 2), -1, dtype=np.int64)
    for i in range(b):
        p = random_inside(targets[i], rng, scale)
        xy[i, 0] = p if p is not None else ((boxes[i, 0] + boxes[i, 2]) / 2, (boxes[i, 1] + boxes[i, 3]) / 2)
        labels[i, 0] = 1
        if rng.random() < 0.5:
            ring = _ring(targets[i])
            q = random_inside(ring, rng, scale)
            if q is not None:
                xy[i, 1], labels[i, 1] = q, 0
    return xy, labels


def _ring(mask: torch.Tensor, width: int = 6) -> torch.Tensor:
    """Background pixels within ``width`` of the object."""
    m = mask[None, None].float()
    grown = torch.nn.functional.max_pool2d(m, 2 * width + 1, stride=1, padding=width)[0, 0] > 0
    return grown & ~mask


def correction_clicks(
    pred: torch.Tensor, targets: torch.Tensor, rng: np.random.Generator, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """One click per object on its error: positive in a missed pixel, negative in a false one, whichever
    error is larger (SAM's iterative training). ``pred`` (B, 256, 256) bool. Returns (B, 1, 2), (B, 1).
    """
    xy = np.zeros((len(pred), 1, 2), dtype=np.float32)
    labels = np.full((len(pred), 1), -1, dtype=np.int64)
    for i in range(len(pred)):
        missed = targets[i] & ~pred[i]
        false = pred[i] & ~targets[i]
        positive = int(missed.sum()) >= int(false.sum())
        p = random_inside(missed if positive else false, rng, scale)
        if p is not None:
            xy[i, 0], labels[i, 0] = p, int(positive)
    return xy, labels
