"""Instance segmentation scores: object matching at an IoU threshold (F1, precision, recall)."""

from __future__ import annotations

import numpy as np


def iou_matrix(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(P + 1, T + 1) IoU between the labels of two (H, W) label images (row/column 0: background).

    Labels need not be consecutive; they index the matrix directly.
    """
    p = np.asarray(pred).ravel().astype(np.int64)
    t = np.asarray(truth).ravel().astype(np.int64)
    if p.shape != t.shape:
        raise ValueError(f"label images differ in shape: {np.shape(pred)} vs {np.shape(truth)}")
    n_p, n_t = int(p.max(initial=0)) + 1, int(t.max(initial=0)) + 1
    inter = np.bincount(p * n_t + t, minlength=n_p * n_t).reshape(n_p, n_t).astype(np.float64)
    area_p = inter.sum(axis=1)
    area_t = inter.sum(axis=0)
    return inter / np.maximum(area_p[:, None] + area_t[None, :] - inter, 1.0)


def match_scores(pred: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> dict:
    """Objects matched one to one at IoU > ``threshold`` (≥ 0.5 makes matches unique).

    Returns a dict with ``tp``, ``fp``, ``fn``, ``precision``, ``recall``, ``f1`` and ``mean_matched_iou``.
    """
    if threshold < 0.5:
        raise ValueError(f"threshold must be at least 0.5 for one-to-one matching; got {threshold}")
    iou = iou_matrix(pred, truth)[1:, 1:]
    present_p = np.isin(np.arange(1, iou.shape[0] + 1), np.unique(pred))
    present_t = np.isin(np.arange(1, iou.shape[1] + 1), np.unique(truth))
    iou = iou[present_p][:, present_t]
    matched = iou > threshold
    tp = int(matched.sum())
    n_p, n_t = iou.shape
    fp, fn = n_p - tp, n_t - tp
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": tp / max(n_p, 1),
        "recall": tp / max(n_t, 1),
        "f1": 2 * tp / max(n_p + n_t, 1),
        "mean_matched_iou": float(iou[matched].mean()) if tp else 0.0,
    }


def f1_score(pred: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> float:
    """F1 of object detection with one-to-one matching at IoU > ``threshold``."""
    return float(match_scores(pred, truth, threshold)["f1"])
