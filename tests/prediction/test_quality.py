"""The score shown beside a candidate mask: the predicted IoU of models whose IoU head estimates it, an
estimated IoU (calibrated head + relative stability) for the others."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sam.geometry.windows import Window
from napari_sam.models.registry import MODELS, ScoreCalibration
from napari_sam.prediction.quality import candidate_scores, estimated_iou, score_meaning
from napari_sam.prediction.result import Prediction
from napari_sam.prediction.scores import relative_stability_score, stability_score


def ramp_logits(scale: float, sharp: float) -> np.ndarray:
    """(32, 32) logits of a disc: ``scale`` × tanh(``sharp`` × signed distance to its edge)."""
    rr, cc = np.mgrid[:32, :32]
    signed = 10 - np.hypot(rr - 16, cc - 16)
    return (scale * np.tanh(sharp * signed)).astype(np.float32)


def prediction(logits: np.ndarray, head: np.ndarray) -> Prediction:
    crops = [(logits > 0)[:, :8, :8]]
    return Prediction(
        crops, [(0, 0)], head[None].astype(np.float32), logits[None], [Window(0, 0, 32)], (32, 32)
    )


def test_relative_stability_does_not_depend_on_the_logit_scale():
    crisp, soft = ramp_logits(1.0, 3.0), ramp_logits(1.0, 0.2)
    for scale in (0.3, 30.0):
        rel = relative_stability_score(np.stack([crisp, soft]) * scale)
        np.testing.assert_allclose(rel, relative_stability_score(np.stack([crisp, soft])), atol=1e-6)
        assert rel[0] > 0.9 > rel[1]  # sharp edges are stable, a blurry map is not
    # SAM's fixed 1-logit offset scores every mask on a small logit scale 0 (LiteMedSAM's candidates)
    assert stability_score(np.stack([crisp, soft]) * 0.3).max() == 0
    with pytest.raises(ValueError, match="fraction"):
        relative_stability_score(crisp, 1.5)


def test_calibrated_model_shows_an_estimated_iou_others_their_head():
    logits = np.stack([ramp_logits(0.4, 3.0), ramp_logits(0.4, 0.3), ramp_logits(0.4, 1.0)])
    head = np.array([0.25, 0.19, 0.22])  # LiteMedSAM-like: all candidates low, whatever the mask
    pred = prediction(logits, head)
    lite = MODELS["lite_medsam"]
    shown = candidate_scores(pred, lite)
    assert [s.kind for s in shown] == ["est. IoU"] * 3
    cal = lite.score_calibration
    np.testing.assert_allclose([s.value for s in shown], estimated_iou(head, logits, cal, True), rtol=1e-6)
    assert shown[0].value > shown[2].value > shown[1].value  # a crisp, high-head mask ranks first
    assert shown[0].label == f"est. IoU {shown[0].value:.2f}"
    assert score_meaning(lite).startswith("est. IoU:")
    sam = candidate_scores(pred, MODELS["sam_vit_b"])  # SAM's head was trained on clicks: shown as is
    assert [s.label for s in sam] == ["predicted IoU 0.25", "predicted IoU 0.19", "predicted IoU 0.22"]
    with pytest.raises(ValueError, match="SamModel or a ModelSpec"):
        candidate_scores(pred, "lite_medsam")


def test_estimate_is_clipped_to_zero_one_and_uses_the_single_output_fit_for_one_mask():
    cal = ScoreCalibration(single=(1.0, 0.0, 0.5), multi=(0.0, 0.0, -1.0))
    logits = ramp_logits(5.0, 1.0)[None]
    assert estimated_iou(np.array([0.9]), logits, cal, multimask=False)[0] == 1.0
    assert estimated_iou(np.array([0.9]), logits, cal, multimask=True)[0] == 0.0
    assert estimated_iou(np.array([0.2]), logits, cal, multimask=False)[0] == pytest.approx(0.7)
