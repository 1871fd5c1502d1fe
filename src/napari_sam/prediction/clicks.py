"""What a new click means next to the object being prompted, shared by both front ends.

Two checks on the prompts of one object and the mask they gave:

- :func:`starts_new_object`: a positive click far outside the current object's mask (farther from it
  than the mask's own radius) is taken as the start of a *new* object: the front end commits the
  current preview and prompts the new object with that click alone, instead of combining the two
  clicks into one scattered mask (a leftover point from an earlier step is the usual cause).
- :func:`large_mask_note`: a click whose mask is much larger than the objects committed so far
  (more than ``factor`` × their median area, once there are ``min_objects``) most often spilled over
  its neighbours (H&E nuclei: 2,800–6,100 px masks against ~500 px nuclei); the note suggests a box.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napari_sam.prediction.result import Prediction
from napari_sam.prompts import Prompts

LARGE_MASK_FACTOR = 4.0
LARGE_MASK_MIN_OBJECTS = 3


def distance_to_mask(prediction: Prediction, point, k: int = 0, candidate: int | None = None) -> float:
    """Distance in pixels from ``point`` (row, col) to the nearest pixel of object ``k``'s mask
    (``candidate``, default the best); 0 inside it, ``inf`` for an empty mask.
    """
    m = prediction.best_index(k) if candidate is None else candidate
    crop = prediction.crops[k][m]
    pix = np.argwhere(crop)
    if not len(pix):
        return float("inf")
    r0, c0 = prediction.offsets[k]
    d2 = ((pix[:, 0] + r0 - float(point[0])) ** 2 + (pix[:, 1] + c0 - float(point[1])) ** 2).min()
    return float(np.sqrt(d2))


def mask_radius(prediction: Prediction, k: int = 0, candidate: int | None = None) -> float:
    """The radius of the disc with the mask's area, in pixels."""
    m = prediction.best_index(k) if candidate is None else candidate
    return float(np.sqrt(prediction.crops[k][m].sum() / np.pi))


def is_far_from_mask(
    prediction: Prediction, point, k: int = 0, candidate: int | None = None, reach: float = 1.0
) -> bool:
    """Whether ``point`` lies outside the mask dilated by ``reach`` × its own radius (at least 3 px).

    An empty mask is never "far": a click next to nothing refines the same prompt.
    """
    if reach <= 0:
        raise ValueError(f"reach must be > 0 (a multiple of the mask's radius); got {reach}")
    radius = mask_radius(prediction, k, candidate)
    if radius == 0:
        return False
    return distance_to_mask(prediction, point, k, candidate) > max(reach * radius, 3.0)


def added_point(before: Prompts, after: Prompts) -> tuple[np.ndarray, bool] | None:
    """The one point ``after`` adds to ``before`` ((row, col), positive), or None when ``after`` differs
    from ``before`` in any other way (a moved or removed point, a new box or mask, another plane).
    """
    if len(after.points) != len(before.points) + 1 or after.plane != before.plane:
        return None
    point, positive = after.points[-1], bool(after.labels[-1])
    if before.with_point(float(point[0]), float(point[1]), positive) != after:
        return None
    return point, positive


def starts_new_object(
    shown: Prompts | None,
    prediction: Prediction | None,
    prompts: Prompts,
    candidate: int | None = None,
    reach: float = 1.0,
) -> bool:
    """Whether ``prompts`` is ``shown`` plus one positive click far outside ``prediction``'s mask.

    Parameters
    ----------
    shown
        The prompts that gave ``prediction`` (the object in the preview).
    prediction
        Their answer, one object (the mask in the preview; ``candidate`` of it, default the best).
    prompts
        The prompts after the click.
    candidate, reach
        See :func:`is_far_from_mask`.

    Returns
    -------
    bool
        True: commit the preview as an object and prompt a new one with that click alone. False for a
        negative click, a click on or near the mask, several objects in the preview, or any other change
        of the prompts.
    """
    if shown is None or prediction is None or shown.is_empty or prediction.scores.shape[0] != 1:
        return False
    if shown.refines is not None:  # correcting a committed object: clicks refine it
        return False
    added = added_point(shown, prompts)
    if added is None or not added[1]:
        return False
    return is_far_from_mask(prediction, added[0], 0, candidate, reach)


def new_object_prompts(prompts: Prompts) -> Prompts:
    """The prompts of the new object that the last click of ``prompts`` starts: that click alone."""
    point = prompts.points[-1]
    return Prompts(plane=prompts.plane).with_point(float(point[0]), float(point[1]), bool(prompts.labels[-1]))


def new_object_text(committed: Sequence[int], undo_key: str, not_committed: str = "") -> str:
    """The status after a far click started a new object (``committed``: the ids the preview became,
    empty while the commit waits for the refined mask; ``not_committed``: why the preview could not be
    committed, e.g. every pixel already belongs to other objects).
    """
    if not_committed:
        return (
            f"The previous mask was not committed ({not_committed}); the click far from it started a new "
            "object"
        )
    if committed:
        what = f"Committed object{'s' if len(committed) > 1 else ''} {', '.join(map(str, committed))}"
    else:
        what = "Committing the previous object when its refined mask is ready"
    return f"{what}; the click far from it started a new object ({undo_key} undoes)"


def large_mask_note(
    prompts: Prompts,
    area: int,
    committed_areas: Sequence[int],
    factor: float = LARGE_MASK_FACTOR,
    min_objects: int = LARGE_MASK_MIN_OBJECTS,
) -> str:
    """A note when a click-only prompt gave a mask much larger than the objects committed so far.

    Parameters
    ----------
    prompts
        The prompts of the mask; no note when they hold a box or a drawn mask (the user set the extent).
    area
        The mask's area in pixels.
    committed_areas
        The areas of the objects committed so far.
    factor, min_objects
        The note comes when ``area > factor × median(committed_areas)`` and there are at least
        ``min_objects`` committed objects.

    Returns
    -------
    str
        The note ("" when none).
    """
    if len(prompts.boxes) or prompts.mask is not None or not len(prompts.points):
        return ""
    if len(committed_areas) < min_objects:
        return ""
    median = float(np.median(np.asarray(committed_areas, dtype=float)))
    if median <= 0 or area <= factor * median:
        return ""
    return (
        f"this mask ({int(area):,} px) is {area / median:.0f}× the median committed object "
        f"({median:,.0f} px): if it spilled over neighbours, draw a box around the object instead"
    )
