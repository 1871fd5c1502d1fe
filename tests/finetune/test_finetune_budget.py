"""``minutes=`` holds for the whole call: embedding the objects' windows counts against it. When the
windows do not all fit, the objects embedded by then are trained on, or a clear ValueError comes before any
training; nothing partial is written.
"""

from __future__ import annotations

import time

import pytest

from napari_sam.finetune import finetune
from napari_sam.finetune.api import EMBEDDING_LIMIT, _interleaved
from napari_sam.finetune.data import ObjectRef


def test_budget_too_small_for_the_data_is_refused_before_training(nuclei_crop, tmp_path):
    img, lab = nuclei_crop
    stages = []
    with pytest.raises(ValueError, match=r"time budget \(0.0001 min\) is too small.*more minutes") as err:
        finetune(
            img,
            lab,
            minutes=1e-4,  # gone before the first window
            device="cpu",
            progress=lambda p: stages.append(p.stage),
            out=tmp_path / "out",
        )
    # the 30 zoom windows of the crop's nuclei, and 3 more that clicks on them are searched in (the zoom
    # windows of a nucleus of their median size around each click; the others coincide with zoom windows)
    text = str(err.value)
    assert "0 of 33 windows" in text and "not one of the 33 windows" in text
    assert "training" not in stages and "done" not in stages
    assert not (tmp_path / "out").exists()  # nothing written


def test_budget_running_out_while_embedding_trains_on_what_was_embedded(nuclei_crop, tmp_path):
    """Two images, one window each (zoom off). A slow machine is simulated by real time passing in the
    progress callback after the first window: the second image's objects are left out, the first's
    (4 held out, 19 to train on with seed 0) are trained on, and the whole call keeps to its budget.
    """
    img, lab = nuclei_crop
    images, labels = [img[:, :128], img[:, 128:]], [lab[:, :128], lab[:, 128:]]
    minutes = 0.5
    seen = []

    def progress(p) -> None:
        seen.append(p)
        if p.stage == "embedding" and p.done == 1:  # past the embedding deadline before the second window
            time.sleep(max(0.0, EMBEDDING_LIMIT * 60.0 * minutes - p.elapsed_s + 0.2))

    model = finetune(
        images,
        labels,
        minutes=minutes,
        zoom=False,
        augment=0,
        seed=0,
        batch_size=4,
        device="cpu",
        progress=progress,
        out=tmp_path / "out",
    )
    data = model.report["data"]
    assert data["objects"] == 36 and data["objects_not_embedded"] == 13  # the second image's objects
    assert data["val_objects"] == 4 and data["train_objects"] == 19 and data["windows"] == 1
    assert {source for source, _, _ in data["held_out"]} == {0}
    embedding = [p for p in seen if p.stage == "embedding"]
    assert [(p.done, p.total) for p in embedding] == [(1, 2)]
    assert any(p.stage == "training" for p in seen) and seen[-1].stage == "done"
    assert model.report["time"]["total_s"] <= 60.0 * minutes + 5.0  # one step / evaluation of slack
    v = model.report["validation"]
    assert v["after"] >= v["before"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model.json", "model.safetensors"]


def test_held_out_and_training_objects_are_embedded_in_proportion():
    """Whatever share of the windows a budget embeds, it holds held-out and training objects in their
    proportion, plane by plane in the order the planes first appear (before, the held-out objects came
    first: a short budget embedded 22 of them and 5 to train on, too few to train)."""
    held = [ObjectRef(p, i, (0, 0, 1, 1), 4) for p in (1, 0) for i in range(5)]
    train = [ObjectRef(p, 100 + i, (0, 0, 1, 1), 4) for p in (0, 1) for i in range(20)]
    order = _interleaved(held, train)
    assert sorted(order, key=id) == sorted(held + train, key=id)
    assert [o.plane for o in order] == [1] * 25 + [0] * 25  # the held-out objects' first plane first
    for n in (5, 10, 25):
        assert sum(o in held for o in order[:n]) == n // 5  # one held-out object in five, all along
