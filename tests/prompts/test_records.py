"""The saved record of one object's prompts: version 2 round-trips through JSON, the earlier napari and
notebook records still load, and unknown or damaged records are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_sam.prompts import RECORD_VERSION, Prompts, decode_mask, encode_mask


def _disk(shape, centre, radius):
    rr, cc = np.ogrid[: shape[0], : shape[1]]
    return (rr - centre[0]) ** 2 + (cc - centre[1]) ** 2 <= radius**2


def test_record_round_trip_through_json():
    mask = _disk((30, 40), (12, 20), 6)
    mask[0, 0] = True  # a run starting at the first pixel
    p = Prompts.build(
        points=[(12.25, 20.5), (3, 4)], labels=[1, 0], boxes=[(5, 6, 20, 30)], mask=mask, plane=(1, 2)
    )
    record = json.loads(json.dumps(p.to_record()))
    assert record["version"] == RECORD_VERSION == 2
    assert record["points"] == [[12.25, 20.5], [3.0, 4.0]] and record["labels"] == [1, 0]
    assert record["boxes"] == [[5.0, 6.0, 20.0, 30.0]] and record["plane"] == [1, 2]
    assert sum(record["mask"]["counts"]) == mask.size and record["mask"]["shape"] == [30, 40]
    back = Prompts.from_record(record)
    assert back == p and np.array_equal(back.mask, mask)
    assert Prompts.from_record(Prompts().to_record()) == Prompts()
    assert np.array_equal(decode_mask(encode_mask(~mask)), ~mask)


def test_old_napari_and_notebook_records_load():
    napari_v1 = {"points": [[10.5, 20.0], [3.0, 4.0]], "labels": [1, 0], "boxes": [], "plane": [2]}
    p = Prompts.from_record(napari_v1)
    assert p.points.tolist() == [[10.5, 20.0], [3.0, 4.0]] and p.labels.tolist() == [1, 0]
    assert len(p.boxes) == 0 and p.plane == (2,)
    with_mask = {"points": [], "labels": [], "boxes": [[1, 2, 3, 4]], "plane": [], "mask_pixels": 12}
    assert Prompts.from_record(with_mask).boxes.tolist() == [[1.0, 2.0, 3.0, 4.0]]
    assert Prompts.from_record({"boxes": [[9, 9, 21, 21]]}).describe() == "1 box"

    notebook_v1 = {"points": [[10.0, 20.0, 1], [5.5, 6.0, 0]], "box": [40.0, 60.0, 50.0, 99.0]}
    q = Prompts.from_record(notebook_v1)
    assert q.points.tolist() == [[10.0, 20.0], [5.5, 6.0]] and q.labels.tolist() == [1, 0]
    assert q.boxes.tolist() == [[40.0, 60.0, 50.0, 99.0]]
    assert Prompts.from_record({"box": [1, 2, 3, 4]}).describe() == "1 box"  # empty keys were dropped
    assert Prompts.from_record({"points": [[1, 2, 0], [3, 4, 1]]}).labels.tolist() == [0, 1]
    assert Prompts.from_record(None).is_empty and Prompts.from_record({}).is_empty

    with pytest.raises(ValueError, match="version 3"):
        Prompts.from_record({**Prompts().to_record(), "version": 3})
    with pytest.raises(ValueError, match="unknown prompt record keys"):
        Prompts.from_record({"source": "somewhere"})
    with pytest.raises(ValueError, match="do not add up"):
        Prompts.from_record({**Prompts().to_record(), "mask": {"shape": [2, 2], "counts": [1, 2]}})
