"""SamWidget(image, labels=existing): an existing segmentation's objects (ids kept) corrected from the
notebook, with the real model on the stardist nuclei: ``edit(k)`` (or the canvas's E message) makes the
object's mask the current one, one click corrects it, commit puts it back under its id, undo restores
it. No browser here (see test_browser_jupyterlab.py for the canvas)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sam.io.samples import nuclei
from sam_widgets import SamWidget

NUCLEUS = 1  # a mid-sized ground-truth nucleus near (455, 418)


def _iou(a, b) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture(scope="module")
def damaged():
    image, truth = nuclei()
    gt = truth == NUCLEUS
    cut = gt & (np.arange(truth.shape[1])[None, :] >= int(np.median(np.nonzero(gt)[1])))
    labels = truth.copy()
    labels[cut] = 0
    missing = np.argwhere(cut)
    click = missing[np.argmin(((missing - missing.mean(axis=0)) ** 2).sum(axis=1))]
    return image, truth, labels, click


def test_edit_click_commit_under_the_id_and_undo(damaged, lite_medsam):
    image, truth, labels, click = damaged
    w = SamWidget(image, model=lite_medsam, labels=labels, progress=False)
    sent = []
    send = w.send
    w.send = lambda content, buffers=None: (sent.append(content), send(content, buffers))
    assert np.array_equal(w.labels, labels) and w.num_objects == len(np.unique(truth)) - 1
    assert "loaded" in w.status

    # the canvas's E over the object: the kernel gets {"type": "edit", row, col}
    inside = np.argwhere(labels == NUCLEUS)[0]
    w._on_message(w, {"type": "edit", "row": float(inside[0]), "col": float(inside[1])}, [])
    assert w.editing == NUCLEUS and np.array_equal(w.mask, labels == NUCLEUS)
    assert sent[-1]["type"] == "prediction" and sent[-1]["candidates"]  # the browser draws it

    prediction = w.add_point(*click)
    before = _iou(labels == NUCLEUS, truth == NUCLEUS)
    assert _iou(prediction.masks[0, prediction.best_index(0)], truth == NUCLEUS) > before + 0.2
    assert w.commit() == NUCLEUS
    assert w.editing == 0 and w.prediction is None
    assert _iou(w.labels == NUCLEUS, truth == NUCLEUS) > before + 0.2
    row = w.table().loc[NUCLEUS]
    assert row["prompts"].startswith(f"refined object {NUCLEUS}") and w.objects[0]["prompts"]["refines"] == 1
    assert w.undo() == NUCLEUS and np.array_equal(w.labels, labels)

    # edit(k) from Python, then Escape (the canvas's clear) stops editing; nothing changes
    w.edit(NUCLEUS)
    assert w.editing == NUCLEUS and w.mask is not None
    w._on_message(w, {"type": "clear"}, [])
    assert w.editing == 0 and w.prediction is None and np.array_equal(w.labels, labels)
    w._on_message(w, {"type": "edit", "row": 2.0, "col": 2.0}, [])  # background: nothing to edit
    assert w.editing == 0 and "no object" in w.status
    with pytest.raises(ValueError, match="no committed object 99999"):
        w.edit(99999)


def test_labels_of_the_wrong_shape_are_refused(damaged, lite_medsam):
    image, _, labels, _ = damaged
    with pytest.raises(ValueError, match="shape"):
        SamWidget(image, model=lite_medsam, labels=labels[:100], progress=False, encode=False)
