"""The one score each front end shows beside a candidate mask, and its label.

SAM's IoU head predicts the IoU of each mask; SAM and MobileSAM were trained for that on clicks, so
their "predicted IoU" is shown as it is. LiteMedSAM was trained with boxes and a single output: on
clicked nuclei its three multimask outputs score 0.18–0.26 whatever the mask (true IoU 0.0–0.95), and
SAM's stability score (fixed offset of 1 logit) is 0 for all of them, because those outputs' logits
stay within about ±0.5. Such a model carries a :class:`~napari_sam.models.registry.ScoreCalibration`
in its registry entry, and its score is shown as an *estimated IoU*: a linear map of the predicted IoU
and the mask's relative stability (:func:`~napari_sam.prediction.scores.relative_stability_score`),
fitted against the true IoU of clicked objects.

LiteMedSAM, one click at the innermost pixel of each nucleus; the fit uses 40 nuclei of the stardist
sample, the H&E rendering of the same image (30 nuclei, :mod:`napari_sam.io.sample_variants`) is held
out. Pearson r and Spearman ρ with the true IoU, and the mean absolute error (MAE) of the number shown:

=================  ===============================  ===============================
LiteMedSAM output  IoU head as it is                estimated IoU (this module)
=================  ===============================  ===============================
single mask        nuclei r 0.72 ρ 0.70 MAE 0.21    nuclei r 0.82 ρ 0.74 MAE 0.12
                   H&E    r 0.54 ρ 0.63 MAE 0.30    H&E    r 0.59 ρ 0.65 MAE 0.19
three candidates   nuclei r 0.75 ρ 0.69 MAE 0.39    nuclei r 0.79 ρ 0.77 MAE 0.13
                   H&E    r 0.52 ρ 0.55 MAE 0.33    H&E    r 0.54 ρ 0.59 MAE 0.20
=================  ===============================  ===============================

So the estimate ranks masks a little better than the head (held out: +0.02 to +0.04 in ρ) and,
mainly, puts them on the IoU scale: a good mask reads 0.8, not 0.25. SAM's stability score with its
fixed 1-logit offset was tried too: single mask r 0.75 (nuclei) / 0.44 (H&E), and 0 for every
candidate of the multimask output. A fine-tuned model keeps its base model's calibration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_sam.models.registry import ModelSpec, ScoreCalibration
from napari_sam.prediction.result import Prediction
from napari_sam.prediction.scores import relative_stability_score

PREDICTED_IOU = "predicted IoU"
ESTIMATED_IOU = "est. IoU"


@dataclass(frozen=True)
class CandidateScore:
    """The score shown for one candidate mask.

    Attributes
    ----------
    value
        In [0, 1]: the model's predicted IoU, or the estimated IoU of a calibrated model.
    kind
        ``"predicted IoU"`` or ``"est. IoU"``.
    """

    value: float
    kind: str

    @property
    def label(self) -> str:
        """E.g. ``"est. IoU 0.84"``."""
        return f"{self.kind} {self.value:.2f}"


def _calibration(model) -> ScoreCalibration | None:
    spec = getattr(model, "spec", model)
    if spec is not None and not isinstance(spec, ModelSpec):
        raise ValueError(f"expected a SamModel or a ModelSpec; got {type(model).__name__}")
    return None if spec is None else spec.score_calibration


def estimated_iou(predicted_iou, logits, calibration: ScoreCalibration, multimask: bool) -> np.ndarray:
    """The calibrated IoU estimate of masks with head scores ``predicted_iou`` (...,) and low-resolution
    ``logits`` (..., h, w); (...,) float32 in [0, 1].
    """
    w_iou, w_stab, bias = calibration.multi if multimask else calibration.single
    stab = relative_stability_score(logits, calibration.stability_fraction)
    est = w_iou * np.asarray(predicted_iou, dtype=np.float32) + w_stab * stab + bias
    return np.clip(est, 0.0, 1.0).astype(np.float32)


def candidate_scores(prediction: Prediction, model, k: int = 0) -> list[CandidateScore]:
    """The score to show for each candidate of object ``k`` of ``prediction``, made by ``model`` (a
    :class:`~napari_sam.models.loading.SamModel` or its :class:`~napari_sam.models.registry.ModelSpec`).

    The estimated IoU where the model's registry entry has a score calibration, its predicted IoU
    otherwise. Both front ends show these labels (napari's candidate line, the notebook's picker).
    """
    calibration = _calibration(model)
    head = prediction.scores[k]
    if calibration is None:
        return [CandidateScore(float(v), PREDICTED_IOU) for v in head]
    est = estimated_iou(head, prediction.logits[k], calibration, prediction.num_candidates > 1)
    return [CandidateScore(float(v), ESTIMATED_IOU) for v in est]


def score_meaning(model) -> str:
    """One sentence on what the shown number is, for tooltips and status lines."""
    calibration = _calibration(model)
    if calibration is None:
        return "predicted IoU: the model's own estimate of how well the mask matches the object"
    return (
        "est. IoU: the model's IoU head and the mask's stability, calibrated against the true IoU of "
        f"clicked objects ({calibration.fitted_on}): a rough guide to the mask's quality"
    )
