"""The layer choosers of the docks: "Train on my annotations" starts from the committed objects."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def test_the_training_dock_chooses_the_committed_objects_until_the_user_picks(make_napari_viewer):
    from napari_sam._napari._finetune import FinetuneWidget

    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((32, 32), np.uint8), name="cells")
    viewer.add_labels(np.zeros((32, 32), np.int32), name="cells ground truth")
    tune = FinetuneWidget(viewer)
    assert tune.labels_combo.currentText() == "cells ground truth"  # the only Labels layer so far
    viewer.add_labels(np.zeros((32, 32), np.int32), name="cells SAM objects")  # the annotator's
    assert tune.labels_combo.currentText() == "cells SAM objects"

    tune.labels_combo.setCurrentIndex(0)
    tune.labels_combo.activated.emit(0)  # what a user's pick in the list emits
    viewer.add_labels(np.zeros((32, 32), np.int32), name="other SAM objects")
    assert tune.labels_combo.currentText() == "cells ground truth"  # the user's pick stays
    tune.deleteLater()
