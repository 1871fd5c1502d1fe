"""The zoom factor chosen per image by the model's own scores (:mod:`napari_sam.automatic.zoom`)."""

import numpy as np
import pytest

from napari_sam.automatic.box_mode import BoxModeParams
from napari_sam.automatic.zoom import check_zoom_factor, choose_zoom, probe_sample


def _grid_boxes(n: int, size: float, step: float) -> np.ndarray:
    """(n*n, 4) square boxes of ``size`` on a regular grid (min_row, min_col, max_row, max_col)."""
    starts = np.arange(n) * step
    r, c = np.meshgrid(starts, starts, indexing="ij")
    return np.stack([r.ravel(), c.ravel(), r.ravel() + size - 1, c.ravel() + size - 1], axis=1)


def test_the_probe_takes_typical_boxes_close_together():
    boxes = _grid_boxes(10, 10, 20)  # 100 boxes of extent 10
    big = np.array([[0, 0, 99, 99], [50, 50, 149, 149]], float)  # clusters: not typical
    all_boxes = np.concatenate([big, boxes])
    sample = probe_sample(all_boxes, size=9)
    assert len(sample) == 9 and not ({0, 1} & set(sample.tolist()))
    centres = (all_boxes[sample, :2] + all_boxes[sample, 2:]) / 2
    # nine neighbours on a 20-px grid: a 3×3 block, not boxes scattered over the image
    assert np.ptp(centres[:, 0]) <= 40 and np.ptp(centres[:, 1]) <= 40
    assert probe_sample(np.zeros((0, 4))).size == 0


def test_the_factor_the_model_scores_higher_wins():
    boxes = _grid_boxes(6, 12, 30)
    asked = []

    def predicted_iou(idx, factor):
        asked.append((factor, len(idx)))
        return np.full(len(idx), 0.8 if factor == 10.0 else 0.7)

    factor, evidence = choose_zoom(boxes, predicted_iou)
    assert factor == 10.0 and evidence["zoom_scores"] == {"7": 0.7, "10": 0.8}
    assert [f for f, _ in asked] == [7.0, 10.0] and all(n == 24 for _, n in asked)
    # a tie keeps the first (closer) factor, and no boxes ask nothing
    assert choose_zoom(boxes, lambda idx, f: np.full(len(idx), 0.5))[0] == 7.0
    assert choose_zoom(np.zeros((0, 4)), predicted_iou)[0] == 7.0


@pytest.mark.parametrize("bad", [0, -3.0, "wide"])
def test_bad_zoom_factors_are_refused(bad):
    with pytest.raises(ValueError, match="zoom_factor must be a positive number or 'auto'"):
        check_zoom_factor(bad)
    with pytest.raises(ValueError, match="zoom_factor"):
        BoxModeParams(zoom_factor=bad)


def test_the_closer_zoom_stays_unless_another_is_clearly_better():
    from napari_sam.automatic.zoom import pick_factor

    assert pick_factor({7.0: 0.80, 10.0: 0.805}, margin=0.01) == 7.0
    assert pick_factor({7.0: 0.80, 10.0: 0.82}, margin=0.01) == 10.0
    assert pick_factor({7.0: 0.80, 10.0: 0.801}) == 10.0  # no margin by default
    assert pick_factor({7.0: 0.80, 10.0: 0.80}) == 7.0
    assert pick_factor({7.0: 0.80, 10.0: 0.70}) == 7.0
