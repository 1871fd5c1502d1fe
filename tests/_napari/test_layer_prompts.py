"""Prompts from napari layers in image pixels: transforms, planes, polarity, shapes → boxes and masks
(napari layer objects, no viewer)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from napari.layers import Image, Points, Shapes
from napari.utils.interactions import mouse_press_callbacks, mouse_release_callbacks

from napari_sam._napari._annotator_layers import install_negative_click
from napari_sam._napari._layers import check_image_layer, current_plane, to_image_pixels
from napari_sam._napari._prompts import (
    NEGATIVE,
    POSITIVE,
    PROMPT_FEATURE,
    collect_prompts,
    ellipse_outline,
    rasterise_polygon,
)


def test_points_of_another_transform_land_on_image_pixels():
    image = Image(np.zeros((100, 200)), scale=(2.0, 0.5), translate=(10.0, -5.0))
    points = Points(np.array([[30.0, 15.0]]), scale=(1.0, 1.0))  # world (30, 15)
    rc = to_image_pixels(points, image, points.data)
    assert np.allclose(rc, [[(30 - 10) / 2.0, (15 + 5) / 0.5]])


def test_prompts_on_the_shown_plane_only_with_polarity():
    image = Image(np.zeros((3, 64, 64)), scale=(5.0, 1.0, 1.0))
    info = check_image_layer(image)
    assert info.lead_shape == (3,) and info.spatial_shape == (64, 64)
    assert current_plane(image, info, (10.0, 0.0, 0.0)) == (2,)
    points = Points(
        np.array([[2, 10, 12], [2, 20, 22], [1, 5, 5]], dtype=float),
        features={PROMPT_FEATURE: [POSITIVE, NEGATIVE, POSITIVE]},
        scale=(5.0, 1.0, 1.0),
    )
    shapes = Shapes(
        [np.array([[2, 4, 6], [2, 4, 30], [2, 40, 30], [2, 40, 6]], dtype=float)],
        shape_type="rectangle",
        scale=(5.0, 1.0, 1.0),
    )
    prompts = collect_prompts(points, shapes, image, info, (2,))
    assert np.allclose(prompts.points, [[10, 12], [20, 22]]) and prompts.labels.tolist() == [1, 0]
    assert np.allclose(prompts.boxes, [[4, 6, 40, 30]]) and prompts.mask is None
    assert collect_prompts(points, None, image, info, (0,)).is_empty


def test_ellipse_and_polygon_become_a_mask():
    corners = np.array([[10, 10], [10, 30], [20, 30], [20, 10]], dtype=float)  # napari's ellipse box
    outline = ellipse_outline(corners)
    assert np.allclose(outline.mean(axis=0), [15, 20], atol=1e-6)
    mask = rasterise_polygon(outline, (40, 40))
    rows, cols = np.nonzero(mask)
    assert rows.min() >= 10 and rows.max() <= 20 and cols.min() >= 10 and cols.max() <= 30
    assert abs(mask.sum() - np.pi * 5 * 10) < 20
    image = Image(np.zeros((40, 40)))
    shapes = Shapes([corners], shape_type="ellipse")
    prompts = collect_prompts(None, shapes, image, check_image_layer(image), ())
    assert prompts.mask is not None and np.array_equal(prompts.mask, mask) and len(prompts.boxes) == 0


@dataclass
class MouseEvent:
    """The fields of a canvas mouse event that napari's layer callbacks read (as napari's own tests
    drive them): a real napari layer receives it through napari's dispatch functions."""

    type: str
    is_dragging: bool = False
    modifiers: list = field(default_factory=list)
    position: tuple = (0, 0)
    pos: np.ndarray = field(default_factory=lambda: np.zeros(2))
    view_direction: list | None = None
    up_direction: list | None = None
    dims_displayed: list = field(default_factory=lambda: [0, 1])


def _click(layer, position, modifiers=()):
    from napari.utils._proxies import ReadOnlyWrapper

    for kind, run in (("mouse_press", mouse_press_callbacks), ("mouse_release", mouse_release_callbacks)):
        run(
            layer,
            ReadOnlyWrapper(
                MouseEvent(kind, modifiers=list(modifiers), position=tuple(position)), exceptions=("handled",)
            ),
        )


def test_click_is_positive_shift_click_and_negative_mode_are_negative():
    import pandas as pd

    layer = Points(
        np.zeros((0, 2)),
        features=pd.DataFrame({PROMPT_FEATURE: pd.Categorical([], categories=[POSITIVE, NEGATIVE])}),
        feature_defaults={PROMPT_FEATURE: POSITIVE},
    )
    negative_mode = [False]
    install_negative_click(layer, lambda: negative_mode[0])
    layer.mode = "add"
    _click(layer, (5, 5))
    _click(layer, (6, 6), modifiers=["Shift"])
    negative_mode[0] = True
    _click(layer, (7, 7))
    negative_mode[0] = False
    _click(layer, (8, 8))
    assert len(layer.data) == 4
    assert list(layer.features[PROMPT_FEATURE]) == [POSITIVE, NEGATIVE, NEGATIVE, POSITIVE]


def test_an_image_misread_as_rgb_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="misread a channel axis as RGB"):
        check_image_layer(Image(np.zeros((4, 6, 3), np.uint8)))  # napari guesses RGB from the last axis


def test_labels_and_missing_layers_are_refused():
    from napari.layers import Labels

    with pytest.raises(ValueError, match="Labels layer"):
        check_image_layer(Labels(np.zeros((8, 8), int)))
    with pytest.raises(ValueError, match="no image layer"):
        check_image_layer(None)
