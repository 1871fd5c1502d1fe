"""Committed objects: ids, overlaps, one-step undo, objects spanning planes, saving and loading."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_sam.annotations import Annotations


def _disk(shape, centre, radius):
    rr, cc = np.ogrid[: shape[0], : shape[1]]
    return (rr - centre[0]) ** 2 + (cc - centre[1]) ** 2 <= radius**2


def test_commit_keeps_earlier_objects_and_undo_restores():
    ann = Annotations((40, 50))
    a = ann.commit(_disk((40, 50), (20, 20), 8), score=0.9)
    b = ann.commit(_disk((40, 50), (20, 28), 8))  # overlaps a: a keeps its pixels
    assert (a, b) == (1, 2)
    assert (ann.labels == a).sum() == _disk((40, 50), (20, 20), 8).sum()
    assert ann.objects[1].area == int((ann.labels == b).sum())
    with pytest.raises(ValueError, match="already belongs"):
        ann.commit(_disk((40, 50), (20, 20), 3))
    with pytest.raises(ValueError, match="empty"):
        ann.commit(np.zeros((40, 50), bool))
    with pytest.raises(ValueError, match="does not match"):
        ann.commit(np.ones((4, 5), bool))
    assert ann.undo() == b and ann.next_id == b
    assert set(np.unique(ann.labels)) == {0, a}


def test_an_object_over_several_planes_has_one_id_and_one_undo(tmp_path):
    ann = Annotations((5, 30, 30))
    first = ann.commit(_disk((30, 30), (10, 10), 4), plane=2)
    masks = {z: _disk((30, 30), (15, 15), r) for z, r in ((1, 3), (2, 6), (3, 5), (4, 0.5))}
    masks[0] = np.zeros((30, 30), bool)  # an empty plane is skipped
    obj = ann.commit_planes(masks, plane=2, prompts={"boxes": [[9, 9, 21, 21]]})
    rec = ann.objects[-1]
    assert obj == first + 1 and rec.planes == [1, 2, 3, 4] and rec.plane == 2
    assert rec.area == int((ann.labels == obj).sum())
    assert [bool((ann.labels[z] == obj).any()) for z in range(5)] == [False, True, True, True, True]
    assert (ann.labels[2] == first).sum() == _disk((30, 30), (10, 10), 4).sum()  # earlier object kept
    assert rec.bbox == (9, 9, 21, 21)

    saved = ann.save(tmp_path / "ann")
    back = Annotations.load(saved)
    np.testing.assert_array_equal(back.labels, ann.labels)
    assert back.objects[-1].planes == [1, 2, 3, 4] and back.next_id == obj + 1

    assert ann.undo() == obj
    assert not (ann.labels == obj).any() and (ann.labels == first).any()
    with pytest.raises(ValueError, match="nothing to commit"):
        ann.commit_planes({0: np.zeros((30, 30), bool)})
    with pytest.raises(ValueError, match="stack labels"):
        Annotations((30, 30)).commit_planes(masks)


def test_folders_saved_before_multi_plane_objects_still_load(tmp_path):
    ann = Annotations((20, 20))
    ann.commit(_disk((20, 20), (10, 10), 3))
    path = ann.save(tmp_path / "old")
    meta = json.loads((path / "objects.json").read_text())
    for o in meta["objects"]:
        del o["planes"]
    (path / "objects.json").write_text(json.dumps(meta))
    back = Annotations.load(path)
    assert back.objects[0].planes is None and back.objects[0].id == 1
