"""Fine-tuning a SAM-family model on the user's own annotated objects (CPU-friendly, minutes).

>>> import napari_sam as ns
>>> model = ns.finetune(image, labels, minutes=3)      # a FinetunedModel (a SamModel)
>>> model.save("my_model")                              # my_model/model.safetensors + model.json
>>> ns.Segmenter(ns.load_model("my_model/model.safetensors"))

The modules: ``data`` (checks, planes, objects, split), ``augment``, ``samples`` (windows and cached
embeddings), ``prompts`` (simulated boxes and clicks), ``train`` (the loop), ``lora`` (encoder adapters),
``artifact`` (the saved files and their verification), ``base_weights`` (the base model and the weights a
fine-tune ends with), ``tuned_model`` (``FinetunedModel`` and ``use_in_session``), ``api`` (:func:`finetune`).
"""

from __future__ import annotations

__all__ = ["finetune", "FinetunedModel", "TrainingProgress"]


def __getattr__(name: str):
    # Lazy: napari_sam.models.loading imports finetune.artifact to verify sidecars; that must stay light.
    if name == "finetune":
        from napari_sam.finetune.api import finetune

        return finetune
    if name == "FinetunedModel":
        from napari_sam.finetune.tuned_model import FinetunedModel

        return FinetunedModel
    if name == "TrainingProgress":
        from napari_sam.finetune.train import TrainingProgress

        return TrainingProgress
    raise AttributeError(f"module 'napari_sam.finetune' has no attribute {name!r}")
