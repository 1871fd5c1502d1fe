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


def test_objects_keep_one_prompt_record_and_the_table_describes_it(tmp_path):
    from napari_sam.prompts import Prompts

    ann = Annotations((40, 50))
    prompts = Prompts.build(points=[(20, 20), (5, 5)], labels=[1, 0], boxes=[(12, 12, 28, 28)])
    a = ann.commit(_disk((40, 50), (20, 20), 8), score=0.9, prompts=prompts)
    b = ann.commit(_disk((40, 50), (10, 40), 4), prompts=prompts.to_record())  # a record: the same
    c = ann.commit(_disk((40, 50), (30, 40), 4))  # no prompts (a mask from Python)
    records = ann.records()
    assert records[0]["prompts"] == records[1]["prompts"] == prompts.to_record()
    assert ann.objects[0].as_prompts() == prompts and ann.objects[2].as_prompts().is_empty
    rows = ann.table()
    assert [r["id"] for r in rows] == [a, b, c]
    assert rows[0] == {
        "id": a,
        "plane": None,
        "planes": None,
        "area": int(_disk((40, 50), (20, 20), 8).sum()),
        "min_row": 12,
        "min_col": 12,
        "max_row": 28,
        "max_col": 28,
        "score": 0.9,
        "prompts": "2 points (1 positive, 1 negative) + 1 box",
    }
    assert rows[2]["prompts"] == "no prompts"
    back = Annotations.load(ann.save(tmp_path / "ann"))
    assert back.table() == rows and back.records() == records
    meta = json.loads((tmp_path / "ann" / "objects.json").read_text())
    assert meta["version"] == 2 and meta["objects"][0]["prompts"]["version"] == 2
    with pytest.raises(ValueError, match="unknown prompt record keys"):
        ann.commit(_disk((40, 50), (3, 3), 2), prompts={"source": "nowhere"})


def test_folders_with_the_old_napari_and_notebook_records_load(tmp_path):
    """Before prompt records were one type, napari saved {points: [[r, c]], labels, boxes, plane} and
    the notebook {points: [[r, c, label]], box}; both load as the same Prompts."""
    ann = Annotations((3, 40, 50))
    ann.commit(_disk((40, 50), (20, 20), 8), plane=1)
    ann.commit(_disk((40, 50), (10, 40), 4), plane=2)
    path = ann.save(tmp_path / "old")
    meta = json.loads((path / "objects.json").read_text())
    meta["version"] = 1
    meta["objects"][0]["prompts"] = {
        "points": [[20.0, 20.0], [5.0, 5.0]],
        "labels": [1, 0],
        "boxes": [[12.0, 12.0, 28.0, 28.0]],
        "plane": [1],
    }
    meta["objects"][1]["prompts"] = {"points": [[10.0, 40.0, 1]], "box": [6.0, 36.0, 14.0, 44.0]}
    (path / "objects.json").write_text(json.dumps(meta))
    back = Annotations.load(path)
    first, second = (o.as_prompts() for o in back.objects)
    assert first.labels.tolist() == [1, 0] and first.plane == (1,) and len(first.boxes) == 1
    assert second.points.tolist() == [[10.0, 40.0]] and second.boxes.tolist() == [[6.0, 36.0, 14.0, 44.0]]
    assert [r["prompts"] for r in back.table()] == [
        "2 points (1 positive, 1 negative) + 1 box",
        "1 point (1 positive) + 1 box",
    ]
    assert back.records()[1]["prompts"]["version"] == 2  # saved again as version 2

    meta["objects"][1]["prompts"] = {"points": [[1, 2, 7]], "box": None}
    (path / "objects.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="object 2: labels must be 1"):
        Annotations.load(path)
    meta["version"] = 9
    (path / "objects.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="newer napari-sam"):
        Annotations.load(path)
