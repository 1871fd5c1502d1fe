import numpy as np
import pytest

from napari_sam.automatic.merge import TileLabels, link_planes, merge_tiles


def test_object_crossing_a_seam_becomes_one_label():
    full = np.zeros((40, 60), int)
    full[10:20, 25:40] = 1  # crosses the overlap of the two tiles (columns 20..35)
    full[5:10, 2:8] = 2
    full[30:35, 50:58] = 3
    left = TileLabels((0, 0), full[:, :35].copy())
    right_part = full[:, 20:].copy()
    right_part[right_part == 3] = 7  # tiles number their objects independently
    right = TileLabels((0, 20), right_part)
    merged = merge_tiles([left, right], full.shape)
    assert merged.max() == 3
    assert len(np.unique(merged[10:20, 25:40])) == 1 and merged[15, 30] > 0
    assert (merged > 0).sum() == (full > 0).sum()


def test_link_planes_follows_moving_objects():
    planes = np.zeros((3, 30, 30), int)
    for z in range(3):
        planes[z, 5 + z : 12 + z, 5:12] = 4  # one object drifting down
    planes[2, 20:25, 20:25] = 1  # appears on the last plane
    linked = link_planes(planes)
    assert set(np.unique(linked[:2])) == {0, 1}
    assert set(np.unique(linked[2])) == {0, 1, 2}
    per_plane = link_planes(planes, min_iou=1.01)  # nothing links: a new id per plane
    assert per_plane.max() == 4


def test_link_planes_across_a_missed_plane_and_size_changes():
    planes = np.zeros((4, 40, 40), int)
    planes[0, 10:30, 10:30] = 1  # a round object cut by widely spaced planes: big, then small
    planes[1, 16:24, 16:24] = 1
    planes[3, 15:25, 15:25] = 1  # missed on plane 2, seen again on plane 3
    planes[3, 32:38, 32:38] = 2  # a new object
    assert link_planes(planes).max() == 4  # by IoU, plane to plane: nothing links
    linked = link_planes(planes, 0.5, measure="smaller", max_gap=1)
    assert set(np.unique(linked[[0, 1]])) == {0, 1} and linked[3, 20, 20] == 1
    assert linked[3, 35, 35] == 2 and linked.max() == 2
    with pytest.raises(ValueError, match="measure"):
        link_planes(planes, measure="dice")
