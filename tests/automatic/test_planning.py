import numpy as np

from napari_sam.automatic.planning import plan_windows


def test_windows_are_bounded_and_hold_their_boxes():
    rng = np.random.default_rng(1)
    centres = rng.uniform(20, 1004, size=(400, 2))
    half = rng.uniform(6, 14, size=(400, 1))
    boxes = np.concatenate([centres - half, centres + half], axis=1)
    windows, assign = plan_windows(boxes, (1024, 1024), 256)
    assert (assign >= 0).all()
    assert len(windows) < len(boxes) / 2  # boxes share windows: far fewer encoder runs than prompts
    for b, j in zip(boxes, assign):
        w = windows[j]
        assert w.row0 <= b[0] and b[2] < w.row0 + w.size and w.col0 <= b[1] and b[3] < w.col0 + w.size


def test_big_boxes_fall_back_to_the_whole_image():
    boxes = np.array([[10, 10, 30, 30], [12, 40, 28, 60], [0, 0, 250, 250]], float)
    windows, assign = plan_windows(boxes, (256, 256), 256)
    assert windows[assign[2]].size == 256 and windows[assign[2]].row0 == 0


def test_larger_boxes_can_share_the_typical_windows():
    # many typical boxes (extent ~20 px) and a few one size class up (~34 px), spread over the image
    rng = np.random.default_rng(2)
    centres = rng.uniform(30, 482, size=(120, 2))
    half = np.where(np.arange(120) < 100, 10.0, 17.0)[:, None]
    boxes = np.concatenate([centres - half, centres + half], axis=1)
    own, own_assign = plan_windows(boxes, (512, 512), 256)
    shared, shared_assign = plan_windows(boxes, (512, 512), 256, larger_from_typical=True)
    typical_side = min(w.size for w in own)
    assert len({w.size for w in own}) > 1  # without sharing, the larger boxes get a grid of their own
    assert len(shared) < len(own)
    served_by_typical = [shared[j].size == typical_side for j in shared_assign[100:]]
    assert any(served_by_typical)
    for b, j in zip(boxes, shared_assign):  # every box inside its window, 8 px to spare
        w = shared[j]
        inner = [b[0] - w.row0, b[1] - w.col0, w.row0 + w.size - 1 - b[2], w.col0 + w.size - 1 - b[3]]
        edge = [w.row0 == 0, w.col0 == 0, w.row0 + w.size >= 512, w.col0 + w.size >= 512]
        assert all(d >= 8 or on_border for d, on_border in zip(inner, edge))
    # the typical boxes are planned as before
    assert [own[j] for j in own_assign[:100]] == [shared[j] for j in shared_assign[:100]]
