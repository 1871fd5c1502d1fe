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
