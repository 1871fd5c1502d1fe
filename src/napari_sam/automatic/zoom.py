"""How far to zoom onto the objects: the model's own scores choose the zoom factor per image.

Every proposal box is answered from a window about ``factor`` × its extent (the zoom rule of
:mod:`~napari_sam.automatic.planning`). Which factor suits an image depends on more than the objects'
size: sharp, well-lit nuclei are answered best when they fill about a sixth of the window (factor 7),
while blurry or noisy ones (block-mean down-scaled, Poisson noise) are answered better with more context
around them (factor 10). The model says which: its predicted IoU for the same boxes is higher at the
factor that gives the better masks. Measured with the ground-truth boxes of the nuclei variants (mean
predicted IoU → mean IoU with the truth, factor 7 / factor 10):

==========  ===================  ===================
variant     factor 7             factor 10
==========  ===================  ===================
original    0.838 → 0.786        0.770 → 0.652
2× down     0.764 → 0.694        0.785 → 0.743
4× down     0.823 → 0.729        0.787 → 0.691
low SNR     0.809 → 0.693        0.819 → 0.739
==========  ===================  ===================

So "auto" answers a small sample of typical proposals at each candidate factor and keeps the factor
whose masks the model scores higher on average (on a tie, the closer one). On a stack the planes with
the most contrast vote together: single planes of a dim synthetic stack disagreed, by less than 0.01
either way, and one plane alone chose the zoom that did worse (one zoom for all planes: F1 0.875 at
7, 0.792 at 10; the three pooled choose 7).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from napari_sam.automatic.score_bar import typical_boxes

ZOOM_CHOICES: tuple[float, ...] = (7.0, 10.0)
PROBE_BOXES = 24
SWITCH_MARGIN = 0.0  # mean predicted IoU another factor needs above the first (a tie keeps it)


def check_zoom_factor(value) -> None:
    """Raise ``ValueError`` unless ``value`` is a positive number or ``"auto"``."""
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(f"zoom_factor must be a positive number or 'auto'; got {value!r}")
        return
    if not value > 0:
        raise ValueError(f"zoom_factor must be a positive number or 'auto'; got {value}")


def probe_sample(boxes_rc: np.ndarray, size: int = PROBE_BOXES) -> np.ndarray:
    """Indices of up to ``size`` typical boxes lying close together.

    Typical: the longest extent within 0.75–1.33× the median's. Close together: the ones nearest the
    typical box closest to the centre of all boxes, so that few windows answer them.

    Parameters
    ----------
    boxes_rc
        (N, 4) boxes (min_row, min_col, max_row, max_col).
    size
        At most this many indices.

    Returns
    -------
    numpy.ndarray
        (K,) int64 indices into ``boxes_rc``, K ≤ ``size``.
    """
    boxes = np.asarray(boxes_rc, dtype=np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    typical = np.flatnonzero(typical_boxes(boxes))
    if len(typical) == 0:
        typical = np.arange(len(boxes))
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    middle = centres[typical].mean(axis=0)
    seed = typical[np.argmin(np.linalg.norm(centres[typical] - middle, axis=1))]
    near = typical[np.argsort(np.linalg.norm(centres[typical] - centres[seed], axis=1), kind="stable")]
    return near[:size].astype(np.int64)


def pick_factor(means: dict[float, float], margin: float = SWITCH_MARGIN) -> float:
    """The first factor of ``means`` (factor → mean predicted IoU, in order of preference), unless another
    scores at least ``margin`` higher: then the highest-scoring one.
    """
    factors = list(means)
    first = factors[0]
    best = max(factors, key=lambda f: (means[f], -factors.index(f)))
    return best if means[best] >= means[first] + margin else first


def sample_means(
    boxes_rc: np.ndarray,
    predicted_iou: Callable[[np.ndarray, float], np.ndarray],
    choices: Sequence[float] = ZOOM_CHOICES,
) -> tuple[dict[float, float], int]:
    """Mean predicted IoU per candidate factor on a sample of the boxes (:func:`probe_sample`), in the
    order of ``choices``, and the sample's size; ``({}, 0)`` with no boxes.

    ``predicted_iou(indices, factor)`` → (K,) float predicted IoU of the masks answering
    ``boxes_rc[indices]`` at ``factor``.
    """
    sample = probe_sample(boxes_rc)
    if len(sample) == 0:
        return {}, 0
    means = {}
    for f in choices:
        s = np.asarray(predicted_iou(sample, float(f)), dtype=np.float64)
        means[float(f)] = float(s.mean()) if s.size else 0.0
    return means, int(len(sample))


def decide(means: dict[float, float]) -> tuple[float, dict]:
    """The factor :func:`pick_factor` keeps from ``means`` (non-empty), and the evidence
    ``{"zoom_factor": factor, "zoom_scores": {"7": mean, "10": mean}}``.
    """
    best = pick_factor(means)
    return best, {"zoom_factor": best, "zoom_scores": {f"{f:g}": round(m, 4) for f, m in means.items()}}


def choose_zoom(
    boxes_rc: np.ndarray,
    predicted_iou: Callable[[np.ndarray, float], np.ndarray],
    choices: Sequence[float] = ZOOM_CHOICES,
) -> tuple[float, dict]:
    """The zoom factor whose answers the model scores best on a sample of the boxes.

    Parameters
    ----------
    boxes_rc
        (N, 4) proposal boxes (min_row, min_col, max_row, max_col).
    predicted_iou
        ``predicted_iou(indices, factor)`` → (K,) float predicted IoU of the masks answering
        ``boxes_rc[indices]`` at ``factor``.
    choices
        Candidate factors, the default first (:func:`pick_factor`; with no boxes the first).

    Returns
    -------
    factor
        The chosen factor.
    evidence
        ``{"zoom_factor": factor, "zoom_scores": {factor: mean predicted IoU}, "zoom_probe": K}``.
    """
    means, probed = sample_means(boxes_rc, predicted_iou, choices) if len(choices) > 1 else ({}, 0)
    if not means:
        return float(choices[0]), {"zoom_factor": float(choices[0]), "zoom_probe": 0}
    best, evidence = decide(means)
    return best, {**evidence, "zoom_probe": probed}
