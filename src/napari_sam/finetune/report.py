"""The record of a fine-tune: what it trained on, with which settings, how the held-out objects fared
before and after, how long it took and with which versions. It is the model's JSON sidecar
(:mod:`~napari_sam.finetune.artifact`) and ``FinetunedModel.report``.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from napari_sam.finetune import artifact
from napari_sam.finetune.identity import encoder_identity
from napari_sam.models.loading import SamModel


@dataclass
class TrainingData:
    """What a fine-tune embedded and trained on (:func:`~napari_sam.finetune.api.finetune`'s first phase).

    Attributes
    ----------
    train, val
        The training and held-out :class:`~napari_sam.finetune.samples.SampleSet`.
    train_objs, val_objs
        The training and held-out objects (:class:`~napari_sam.finetune.data.ObjectRef`) that were
        embedded.
    windows
        Windows embedded for training (all copies).
    not_embedded
        Objects left out when embedding reached its deadline.
    augmentations
        The augmented copies' settings, one dict each.
    """

    train: object
    val: object
    train_objs: list
    val_objs: list
    windows: int
    not_embedded: int
    augmentations: list[dict]


def phase_record(outcome) -> dict:
    """One training phase's steps, best step, validation before and at its best, and how it stopped."""
    return {
        "steps": outcome.steps,
        "best_step": outcome.best_step,
        "before": outcome.base_val.to_dict(),
        "best": outcome.best_val.to_dict(),
        "stopped_by": outcome.stopped_by,
        "history": outcome.history,
    }


def versions() -> dict:
    """Versions of napari-sam, torch, numpy, safetensors (where installed) and Python."""
    import napari_sam

    out = {"napari_sam": napari_sam.__version__, "torch": torch.__version__, "numpy": np.__version__}
    try:
        import safetensors

        out["safetensors"] = safetensors.__version__
    except ImportError:
        pass
    out["python"] = platform.python_version()
    return out


def training_report(
    model: SamModel,
    *,
    inputs: list,
    planes: list,
    objects: int,
    data: TrainingData,
    parameters: dict,
    base_val,
    best_val,
    phases: list[dict],
    encoder_changed: bool,
    times: dict,
    stopped_by: str,
) -> dict:
    """The report of a fine-tune of ``model`` (its base: the weights it was loaded with).

    ``inputs`` fingerprints the training data; ``planes`` are the annotated planes (``source``,
    ``plane``); ``objects`` counts the annotated objects; ``base_val`` / ``best_val`` are the held-out
    scores before training and of the kept weights; ``times`` holds ``started`` (ISO 8601),
    ``embedding_s``, ``training_s`` and ``total_s``.
    """
    return {
        "format": artifact.FORMAT,
        "base": {
            "name": model.spec.name,
            "checkpoint": Path(model.checkpoint).name,
            "sha256": model.checkpoint_sha256,
            "encoder_sha256": encoder_identity(model),
        },
        "architecture": model.spec.name,
        "encoder_changed": encoder_changed,
        "data": {
            "inputs": inputs,
            "planes": len(planes),
            "objects": objects,
            "objects_not_embedded": data.not_embedded,
            "train_objects": len(data.train_objs),
            "val_objects": len(data.val_objs),
            "held_out": [[planes[o.plane].source, planes[o.plane].plane, o.label] for o in data.val_objs],
            "train_samples": len(data.train.samples),
            "windows": data.windows,
            "augmentations": data.augmentations,
        },
        "parameters": parameters,
        "validation": {
            "metric": "mean IoU of the answers to the held-out objects' exact boxes, in image pixels",
            "before": round(base_val.box, 4),
            "after": round(best_val.box, 4),
            "click_metric": "mean IoU of the answers to a click on each held-out object's innermost pixel",
            "click_before": round(base_val.click, 4),
            "click_after": round(best_val.click, 4),
            "selected_by": "the mean of the two",
            "phases": phases,
        },
        "time": times,
        "stopped_by": stopped_by,
        "versions": versions(),
    }
