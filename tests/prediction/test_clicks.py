"""What a click means next to the object being prompted: a new object when far outside its mask, a note
when a click's mask dwarfs the committed objects."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sam.geometry.windows import Window
from napari_sam.prediction.clicks import (
    added_point,
    distance_to_mask,
    is_far_from_mask,
    large_mask_note,
    new_object_prompts,
    new_object_text,
    starts_new_object,
)
from napari_sam.prediction.result import Prediction
from napari_sam.prompts import Prompts


def disc_prediction(centre=(50, 50), radius=10, shape=(200, 200), k=1) -> Prediction:
    """A one-candidate prediction whose mask is a disc (crop placed at an offset, like the real ones)."""
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    disc = (rr - centre[0]) ** 2 + (cc - centre[1]) ** 2 <= radius**2
    r0, c0 = 20, 10
    crop = disc[r0 : r0 + 100, c0 : c0 + 100]
    return Prediction(
        [crop[None]] * k,
        [(r0, c0)] * k,
        np.full((k, 1), 0.9, np.float32),
        np.zeros((k, 1, 4, 4), np.float32),
        [Window(0, 0, 200)] * k,
        shape,
    )


def test_distance_and_radius_use_the_crop_offset():
    pred = disc_prediction()
    assert distance_to_mask(pred, (50, 50)) == 0
    assert distance_to_mask(pred, (50, 75)) == pytest.approx(15, abs=0.01)
    assert not is_far_from_mask(pred, (50, 65))  # 5 px out: within the disc's own radius (~10)
    assert is_far_from_mask(pred, (50, 90))  # 30 px out
    with pytest.raises(ValueError, match="reach"):
        is_far_from_mask(pred, (0, 0), reach=0)


def test_far_positive_click_starts_a_new_object_and_nothing_else_does():
    pred = disc_prediction()
    shown = Prompts.build(points=[(50, 50)])
    assert starts_new_object(shown, pred, shown.with_point(150, 150))
    assert new_object_prompts(shown.with_point(150, 150)) == Prompts.build(points=[(150, 150)])
    assert not starts_new_object(shown, pred, shown.with_point(52, 55))  # on the object: refines
    assert not starts_new_object(shown, pred, shown.with_point(150, 150, positive=False))  # negative
    assert not starts_new_object(None, None, shown.with_point(150, 150))  # nothing in the preview
    moved = Prompts.build(points=[(60, 60), (150, 150)])
    assert not starts_new_object(shown, pred, moved)  # not one added click
    assert not starts_new_object(shown, pred, shown.with_box((140, 140, 160, 160)).with_point(150, 150))
    assert not starts_new_object(shown, disc_prediction(k=2), shown.with_point(150, 150))  # two objects
    boxed = Prompts.build(boxes=(40, 40, 60, 60))
    assert starts_new_object(boxed, pred, boxed.with_point(150, 150))  # a box's object too
    assert added_point(shown, shown.with_point(1, 2, False))[1] is False


def test_new_object_text_names_the_committed_ids_and_the_undo_key():
    assert new_object_text([3], "U") == (
        "Committed object 3; the click far from it started a new object (U undoes)"
    )
    assert new_object_text([], "U").startswith("Committing the previous object")
    assert new_object_text([], "U", "every pixel is taken").startswith(
        "The previous mask was not committed (every pixel is taken)"
    )


def test_large_mask_note_needs_a_click_three_objects_and_four_times_their_median():
    click = Prompts.build(points=[(10, 10)])
    areas = [480, 500, 520]
    assert "draw a box" in large_mask_note(click, 4000, areas)
    assert "4,000 px" in large_mask_note(click, 4000, areas) and "8×" in large_mask_note(click, 4000, areas)
    assert large_mask_note(click, 1900, areas) == ""  # under 4× the median
    assert large_mask_note(click, 4000, areas[:2]) == ""  # too few objects to compare with
    assert large_mask_note(Prompts.build(boxes=(0, 0, 90, 90)), 4000, areas) == ""  # the box set the extent
