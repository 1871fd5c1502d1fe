"""The base model of a fine-tune: which bases are accepted, a fresh copy to train, its published weights,
and the weights a fine-tune ends with.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from napari_sam.models.loading import SamModel


def check_base(base) -> None:
    """``ValueError`` unless ``base`` is a registered model name, an existing checkpoint file or a loaded
    model with a checkpoint (the trainer starts from the published weights).
    """
    from napari_sam.models.registry import MODELS

    if isinstance(base, SamModel):
        if base.checkpoint is None:
            raise ValueError("the base model has no checkpoint file to start from; save it first")
        return
    if not isinstance(base, (str, os.PathLike)):
        raise ValueError(f"base must be a model name, a checkpoint path or a loaded model; got {type(base)}")
    text = str(base)
    if text not in MODELS and not Path(text).expanduser().is_file():
        raise ValueError(
            f"cannot fine-tune {text!r}: it is neither a registered model ({', '.join(MODELS)}) nor an "
            "existing checkpoint file"
        )


def load_base(base, device: str) -> SamModel:
    """A fresh copy of ``base`` on ``device`` to train (a given loaded model is never modified)."""
    from napari_sam.models.device import resolve_device
    from napari_sam.models.loading import load_model

    if isinstance(base, SamModel):  # a fresh copy: the caller's model is never modified
        on = resolve_device(device)
        return load_model(
            base.checkpoint,
            device=on,
            architecture=base.spec.name,
            precision=base.precision,
            backend=base.backend if on.type == "cpu" else "auto",
        )
    return load_model(base, device=device)


def published_weights(model: SamModel) -> dict[str, torch.Tensor]:
    """The base checkpoint's weights, as published (BatchNorms not folded), under the network's keys."""
    from napari_sam.models.checkpoints import load_state_dict
    from napari_sam.models.loading import unwrap_state_dict

    return unwrap_state_dict(load_state_dict(model.checkpoint), model.spec.state_dict_wrappers)


def state_digest(state: dict) -> str:
    """sha256 (hex) of a state dict's keys and tensor bytes, in key order."""
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def reset_encoder(model: SamModel, base_state: dict) -> None:
    """Put the base encoder back (BatchNorms folded again) after adapters that did not help."""
    from napari_sam.models.sam import SamNetwork

    fresh = SamNetwork(model.spec.encoder)
    fresh.load_state_dict(base_state)
    fresh.image_encoder.prepare_for_inference()
    model.network.image_encoder = fresh.image_encoder.to(model.device)


def final_state(model: SamModel, base_state: dict, encoder_changed: bool) -> dict[str, torch.Tensor]:
    """The base weights with the trained prompt encoder and mask decoder (and the merged adapters)."""
    state = {k: v.detach().cpu() for k, v in base_state.items()}
    net = model.network
    for prefix, module in (("prompt_encoder.", net.prompt_encoder), ("mask_decoder.", net.mask_decoder)):
        for key, value in module.state_dict().items():
            state[prefix + key] = value.detach().cpu().clone()
    if encoder_changed:
        from napari_sam.finetune.lora import attention_projections

        names = {id(m): n for n, m in net.image_encoder.named_modules()}
        for layer in attention_projections(net.image_encoder):
            state[f"image_encoder.{names[id(layer)]}.weight"] = layer.weight.detach().cpu().clone()
    return state
