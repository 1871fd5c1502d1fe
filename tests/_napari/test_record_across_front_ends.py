"""One prompt record for both front ends: the same objects committed in the napari annotator (real
napari under Xvfb, real layers) and in the notebook's ``SamWidget`` (its Python side), with the real
LiteMedSAM model, are saved, then each folder is reloaded in the other front end: the object tables
and labels are the same."""

from __future__ import annotations

import numpy as np
import pytest
from sam_napari_helpers import PREDICT_TIMEOUT_MS, object_box, object_rect, ready_annotator, wait_preview

from napari_sam.annotations import Annotations

pytestmark = pytest.mark.gui

POINT_AND_BOX = 54  # ground-truth ids of nuclei of the sample (near (226, 418), (245, 447), (363, 464))
TWO_BOXES = (32, 88)


def _centre(truth, label) -> np.ndarray:
    inside = np.argwhere(truth == label)
    return inside[np.argmin(((inside - inside.mean(axis=0)) ** 2).sum(axis=1))].astype(float)


def _wait_refined(qtbot, widget) -> None:
    qtbot.waitUntil(lambda: widget.refined and not widget.previews.busy, timeout=PREDICT_TIMEOUT_MS)


def _commit_in_napari(qtbot, widget, truth) -> list[int]:
    ids = []
    wait_preview(qtbot, widget, lambda: widget.points_layer.add(_centre(truth, POINT_AND_BOX)))
    wait_preview(qtbot, widget, lambda: widget.shapes_layer.add_rectangles(object_rect(truth, POINT_AND_BOX)))
    _wait_refined(qtbot, widget)
    ids += widget.commit()
    rects = [object_rect(truth, label) for label in TWO_BOXES]
    wait_preview(qtbot, widget, lambda: widget.shapes_layer.add_rectangles(rects))  # two objects at once
    _wait_refined(qtbot, widget)
    ids += widget.commit()
    return ids


def _commit_in_notebook(notebook, truth) -> list[int]:
    notebook.segment(points=[_centre(truth, POINT_AND_BOX)], box=object_box(truth, POINT_AND_BOX))
    ids = [notebook.commit()]
    for label in TWO_BOXES:
        notebook.set_box(object_box(truth, label))
        ids.append(notebook.commit())
    return ids


def _rows(frame) -> list[dict]:
    """A SamWidget.table() DataFrame as Annotations.table() rows (a 2D image: no plane columns)."""
    return frame.reset_index().to_dict("records")


def _without_planes(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("plane", "planes")} for r in rows]


def test_objects_committed_in_napari_and_in_the_notebook_reload_in_the_other(
    make_napari_viewer, qtbot, lite_medsam, nuclei_data, tmp_path
):
    from sam_widgets import SamWidget

    image, truth = nuclei_data
    widget = ready_annotator(make_napari_viewer, qtbot, lite_medsam, image)
    assert _commit_in_napari(qtbot, widget, truth) == [1, 2, 3]
    napari_folder = tmp_path / "napari.annotations"
    widget.save_annotations(napari_folder)
    napari_rows = widget.session.annotations.table()
    napari_labels = widget.session.annotations.labels.copy()

    notebook = SamWidget(image, model=lite_medsam, multimask=False, progress=False)
    assert _commit_in_notebook(notebook, truth) == [1, 2, 3]
    notebook_folder = notebook.save(tmp_path / "notebook.annotations")
    notebook_rows = notebook.annotations.table()
    notebook_labels = notebook.labels.copy()

    # the same prompts give the same record in both front ends, whatever drew them
    described = ["1 point (1 positive) + 1 box", "1 box", "1 box"]
    assert [r["prompts"] for r in napari_rows] == [r["prompts"] for r in notebook_rows] == described
    napari_records = [o.prompts for o in widget.session.annotations.objects]
    notebook_records = [o.prompts for o in notebook.annotations.objects]
    assert napari_records == notebook_records
    assert napari_records[0]["points"] == [_centre(truth, POINT_AND_BOX).tolist()]
    assert napari_records[1]["boxes"] == [list(map(float, object_box(truth, TWO_BOXES[0])))]
    # and the same objects (the masks come from the same model on the same windows)
    for obj in (1, 2, 3):
        a, b = napari_labels == obj, notebook_labels == obj
        assert (a & b).sum() / (a | b).sum() >= 0.95

    # napari's folder in the notebook: the notebook's table and labels are napari's
    notebook.load(napari_folder)
    assert _rows(notebook.table()) == _without_planes(napari_rows)
    np.testing.assert_array_equal(notebook.labels, napari_labels)

    # the notebook's folder in napari: as a layer (the plugin's reader) and in the annotator
    (layer,) = widget.viewer.open(str(notebook_folder), plugin="napari-sam")
    np.testing.assert_array_equal(layer.data, notebook_labels)
    assert layer.metadata["napari_sam_objects"] == notebook_rows
    widget.session.segmenter.annotations = Annotations.load(notebook_folder)
    assert widget.session.annotations.table() == notebook_rows
    qtbot.waitUntil(lambda: np.array_equal(widget.objects_layer.data, notebook_labels), timeout=5_000)

    # both reloaded folders, read by the core, are the same table whichever front end wrote them
    again_napari, again_notebook = Annotations.load(napari_folder), Annotations.load(notebook_folder)
    assert again_napari.table() == napari_rows and again_notebook.table() == notebook_rows
    assert [o.prompts for o in again_napari.objects] == [o.prompts for o in again_notebook.objects]
