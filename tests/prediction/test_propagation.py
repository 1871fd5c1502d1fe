"""Stacks: per-plane embeddings, the plane in view first, one global scaling, propagation of a 3D object."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sam.embeddings.embedder import Cancelled
from napari_sam.io.samples import blobs
from napari_sam.prediction.propagation import mask_overlap, stability
from napari_sam.segmenter import Segmenter

PLANES, CENTRE, HALF_DEPTH, RADIUS = 9, 4, 3.2, 30


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture(scope="module")
def ellipsoid():
    """A (9, 256, 256) stack: an ellipsoid on planes 1–7 (radius 30 px at plane 4, drifting 3 px/plane)
    next to a fixed round nucleus; returns (stack, (9, 256, 256) bool ground truth of the ellipsoid)."""
    planes, truth = [], []
    for z in range(PLANES):
        f = 1 - ((z - CENTRE) / HALF_DEPTH) ** 2
        centres, radii = [(160, 180)], [18]
        if f > 0:
            centres.append((100 + 3 * z, 100 + 2 * z))
            radii.append(max(RADIUS * np.sqrt(f), 3))
        img, gt = blobs((256, 256), centres, radii, seed=z)
        planes.append(img)
        truth.append(gt == 2)
    return np.stack(planes), np.stack(truth)


@pytest.fixture(scope="module")
def stack_session(lite_medsam, ellipsoid, tmp_path_factory):
    seg = Segmenter(lite_medsam)
    seg.set_image(ellipsoid[0], stack_axis=0, plane=CENTRE, cache=tmp_path_factory.mktemp("stack") / "c.zarr")
    return seg


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rc = np.argwhere(mask)
    return (*rc.min(axis=0), *rc.max(axis=0))


def test_the_plane_in_view_is_embedded_first(stack_session):
    seg = stack_session
    assert seg.is_stack and seg.num_planes == PLANES and seg.plane == CENTRE
    assert seg.image_shape == (256, 256) and seg.labels.shape == (PLANES, 256, 256)
    done = seg.store.done_mask()
    assert done.shape == (PLANES, 1) and done[:, 0].tolist() == [p == CENTRE for p in range(PLANES)]
    assert seg.planes_to_encode() == [4, 3, 5, 2, 6, 1, 7, 0, 8]


def test_propagation_follows_the_object_and_stops_where_it_ends(stack_session, ellipsoid):
    seg = stack_session
    _, truth = ellipsoid
    start = seg.predict(box=_box(truth[CENTRE]), plane=CENTRE)
    assert start.plane == CENTRE and _iou(start.mask(0), truth[CENTRE]) > 0.9
    seen = []
    masks = seg.propagate(start, progress=lambda d, t: seen.append((d, t)))
    assert sorted(masks) == [1, 2, 3, 4, 5, 6, 7]  # planes 0 and 8 hold no object: it stopped there
    for z, m in masks.items():
        assert _iou(m, truth[z]) > 0.85, z
    assert seen and seen[-1][1] == PLANES - 1
    # planes are embedded on demand (whole-plane tiles into the cache, zoom windows in memory), once each
    assert seg.embeddings.encoded_count <= 2 * PLANES

    new = seg.commit_planes(masks, plane=CENTRE)  # one object, one id on each of its planes
    assert all(_iou(seg.labels[z] == new, truth[z]) > 0.85 for z in masks)
    assert not seg.labels[0].any() and not seg.labels[8].any()
    record = seg.annotations.objects[-1]
    assert record.id == new and record.plane == CENTRE and record.planes == [1, 2, 3, 4, 5, 6, 7]
    assert record.area == int((seg.labels == new).sum())
    assert seg.undo() == new and not seg.labels.any()  # one undo takes it off every plane


def test_propagation_in_one_direction_and_with_a_mask(stack_session, ellipsoid):
    seg = stack_session
    _, truth = ellipsoid
    forward = seg.propagate(truth[5], plane=5, direction="forward", max_planes=1)
    assert sorted(forward) == [5, 6]
    with pytest.raises(ValueError, match="direction"):
        seg.propagate(truth[5], plane=5, direction="up")
    with pytest.raises(ValueError, match="empty"):
        seg.propagate(truth[0], plane=0)


def test_commit_goes_to_the_prediction_plane(stack_session, ellipsoid):
    seg = stack_session
    _, truth = ellipsoid
    pred = seg.predict(box=_box(truth[6]), plane=6)
    new = seg.commit(pred)
    assert (seg.labels[6] == new).any() and not (seg.labels[seg.plane] == new).any()
    assert seg.undo() == new


def test_stop_criteria_helpers():
    a = np.zeros((10, 10), bool)
    a[2:8, 2:8] = True
    b = np.zeros_like(a)
    b[4:6, 4:6] = True
    assert mask_overlap(a, b) == 1.0 and mask_overlap(a, ~a) == 0.0
    crisp = np.where(a, 10.0, -10.0)
    assert stability(crisp) == 1.0 and stability(np.zeros((4, 4))) == 0.0


def test_time_axis_last_one_global_scaling_and_background_encoding(lite_medsam, tmp_path):
    """A (Y, X, T) stack whose planes dim over time: one scaling for all planes; the rest of the planes
    are encoded in the background, nearest first, and a cancelled run keeps what it finished."""
    planes = [blobs((128, 128), [(64, 64)], [15], peak=3000 - 600 * t, seed=t)[0] for t in range(4)]
    stack = np.stack(planes, axis=-1)  # (Y, X, T)
    seg = Segmenter(lite_medsam)
    seg.set_image(stack, stack_axis=2, plane=1, cache=tmp_path / "t.zarr")
    assert seg.num_planes == 4 and seg.image_shape == (128, 128)
    assert seg.source.plane(0).scaling is seg.source.plane(3).scaling
    np.testing.assert_array_equal(np.asarray(seg.source.plane(3).data)[..., 0], planes[3])

    order = [p for p, _, _ in seg.iter_encode_planes(planes=[0, 2])]
    assert order == [0, 2]  # equally near plane 1: lower first
    with pytest.raises(Cancelled):
        seg.encode_planes(should_stop=lambda: True)
    assert seg.store.done_mask()[:, 0].tolist() == [True, True, True, False]
    assert seg.encode_planes() == 1
    again = Segmenter(lite_medsam)
    again.set_image(stack, stack_axis=2, cache=tmp_path / "t.zarr")
    assert again.store.status == "complete" and again.embeddings.encoded_count == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(stack_axis=0), "needs a stack"),
        (dict(stack_axis=0, channel_axis=0), "needs a stack"),
    ],
)
def test_bad_stack_arguments(lite_medsam, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Segmenter(lite_medsam).set_image(np.zeros((64, 64)), **kwargs)


def test_plane_out_of_range_is_refused(stack_session):
    with pytest.raises(ValueError, match="plane 12 does not exist"):
        stack_session.predict(box=(1, 1, 5, 5), plane=12)
    with pytest.raises(ValueError, match="same|different axes"):
        Segmenter(stack_session.model).set_image(np.zeros((3, 64, 64)), stack_axis=0, channel_axis=0)
