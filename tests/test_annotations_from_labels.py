"""An existing segmentation as committed objects (ids kept), and a correction of one object under its
id that one undo takes back exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_sam.annotations import Annotations
from napari_sam.prompts import Prompts


def _existing() -> np.ndarray:
    labels = np.zeros((40, 50), dtype=np.uint16)
    labels[5:15, 5:15] = 7
    labels[20:30, 10:25] = 3
    labels[2:6, 40:48] = 1000
    return labels


def test_labels_become_objects_with_their_ids_and_new_ids_follow():
    labels = _existing()
    ann = Annotations.from_labels(labels)
    assert np.array_equal(ann.labels, labels) and ann.labels.dtype == np.int32
    rows = {r["id"]: r for r in ann.table()}
    assert sorted(rows) == [3, 7, 1000]
    assert rows[7]["area"] == 100 and (rows[7]["min_row"], rows[7]["max_col"]) == (5, 14)
    assert rows[3]["prompts"] == "no prompts"
    mask = np.zeros((40, 50), bool)
    mask[32:38, 30:40] = True
    assert ann.commit(mask) == 1001


def test_a_stack_object_on_several_planes_is_one_object():
    stack = np.zeros((3, 20, 20), dtype=np.int64)
    stack[0, 2:5, 2:5] = 4
    stack[1, 2:6, 2:6] = 4
    stack[2, 10:12, 10:12] = 9
    ann = Annotations.from_labels(stack)
    by_id = {o.id: o for o in ann.objects}
    assert by_id[4].planes == [0, 1] and by_id[4].plane == 0 and by_id[4].area == 25
    assert by_id[9].planes is None and by_id[9].plane == 2


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.full((4, 4), 1.5), "integer ids"),
        (np.full((4, 4), -1), ">= 0"),
        (np.zeros(4, dtype=int), "(H, W)"),
    ],
)
def test_bad_labels_are_refused(labels, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Annotations.from_labels(labels)


def test_replace_keeps_the_id_and_one_undo_restores_it_exactly(tmp_path):
    labels = _existing()
    ann = Annotations.from_labels(labels)
    before_record = next(o for o in ann.objects if o.id == 7)
    seen = []
    ann.changed.connect(seen.append)
    new = np.zeros((40, 50), bool)
    new[8:22, 8:20] = True  # moves object 7 and runs into object 3 (kept: no overwrite)
    prompts = Prompts.build(points=[[12, 12]], mask=labels == 7, refines=7)
    assert ann.replace(7, new, prompts=prompts, score=0.9) == 7
    assert seen == [7]
    assert not (ann.labels[5:8, 5:15] == 7).any()  # its old pixels outside the new mask: background
    assert (ann.labels[20:22, 10:20] == 3).all()  # the other object keeps its pixels
    assert ((ann.labels == 7) == (new & (labels != 3))).all()
    obj = next(o for o in ann.objects if o.id == 7)
    assert obj.area == int((ann.labels == 7).sum()) and obj.bbox == (8, 8, 21, 19) and obj.score == 0.9
    assert obj.prompts["refines"] == 7 and obj.as_prompts() == prompts
    assert ann.table()[[o.id for o in ann.objects].index(7)]["prompts"].startswith("refined object 7")
    assert ann.next_id == 1001

    # saved and loaded, the record still says which object it refined
    back = Annotations.load(ann.save(tmp_path / "a"))
    assert json.loads((tmp_path / "a" / "objects.json").read_text())["objects"][1]["prompts"]["refines"] == 7
    assert next(o for o in back.objects if o.id == 7).as_prompts() == prompts

    assert ann.undo() == 7
    assert np.array_equal(ann.labels, labels)
    assert next(o for o in ann.objects if o.id == 7) == before_record
    assert [o.id for o in ann.objects] == [3, 7, 1000] and ann.next_id == 1001
    assert ann.undo() is None  # loading is not a commit


def test_replace_refuses_unknown_ids_and_empty_masks():
    ann = Annotations.from_labels(_existing())
    with pytest.raises(ValueError, match="no object 5"):
        ann.replace(5, np.ones((40, 50), bool))
    with pytest.raises(ValueError, match="empty"):
        ann.replace(7, np.zeros((40, 50), bool))


def test_refines_needs_a_mask_and_round_trips_in_the_record():
    with pytest.raises(ValueError, match="needs its mask"):
        Prompts.build(points=[[1, 1]], refines=3)
    with pytest.raises(ValueError, match="integer >= 1"):
        Prompts(mask=np.ones((4, 4), bool), refines=0)
    p = Prompts.build(points=[[1, 2]], mask=np.eye(4, dtype=bool), refines=3)
    record = p.to_record()
    assert record["refines"] == 3 and Prompts.from_record(json.loads(json.dumps(record))) == p
    assert "refines" not in Prompts.build(points=[[1, 2]]).to_record()  # records of new objects unchanged
    assert p.with_point(0, 0).refines == 3 and p.with_mask(None).refines is None
    asked = p.with_box((0, 0, 3, 3)).decoder_request()
    assert asked.refines == 3 and asked.boxes.tolist() == [[0, 0, 3, 3]]  # the box is not ignored
