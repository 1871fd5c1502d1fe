"""The SAM model object: image encoder, prompt encoder and mask decoder under the checkpoint names."""

from __future__ import annotations

import torch
from torch import nn

from napari_sam.models.mask_decoder import MaskDecoder, TokenRegions
from napari_sam.models.prompt_encoder import PromptEncoder
from napari_sam.models.tiny_vit import TinyViTConfig, TinyViTImageEncoder
from napari_sam.models.vit import ViTConfig, ViTImageEncoder


def build_image_encoder(config: ViTConfig | TinyViTConfig) -> nn.Module:
    """Instantiate the encoder that ``config`` describes."""
    if isinstance(config, ViTConfig):
        return ViTImageEncoder(config)
    if isinstance(config, TinyViTConfig):
        return TinyViTImageEncoder(config)
    raise ValueError(f"unknown encoder configuration {type(config).__name__}")


class SamNetwork(nn.Module):
    """SAM-family network. Attribute names match the publishers' state dicts, so they load strictly.

    ``image_encoder`` maps a (B, 3, S, S) normalised image to a (B, 256, S/16·k, ...) embedding
    (64×64 for every registered model); ``prompt_encoder`` and ``mask_decoder`` turn prompts in the
    S×S input frame, SAM's (x, y) order, into (B, M, S/4, S/4) logits at 256×256.
    """

    def __init__(
        self, encoder_config: ViTConfig | TinyViTConfig, embedding_size: int = 64, mask_in_chans: int = 16
    ) -> None:
        super().__init__()
        self.image_encoder = build_image_encoder(encoder_config)
        size = encoder_config.img_size
        self.prompt_encoder = PromptEncoder(
            256, (embedding_size, embedding_size), (size, size), mask_in_chans
        )
        self.mask_decoder = MaskDecoder()

    @property
    def input_size(self) -> int:
        return self.image_encoder.img_size

    def prepare_for_inference(self) -> SamNetwork:
        """Eval mode, gradients off and BatchNorms folded; returns ``self``."""
        self.eval()
        self.requires_grad_(False)
        self.image_encoder.prepare_for_inference()
        return self

    @torch.inference_mode()
    def decode(
        self,
        embedding: torch.Tensor,
        points: tuple[torch.Tensor, torch.Tensor] | None = None,
        boxes: torch.Tensor | None = None,
        mask_logits: torch.Tensor | None = None,
        multimask: bool = False,
        regions: TokenRegions | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt encoder + mask decoder on one (1, C, h, w) embedding for B prompts.

        Coordinates are (x, y) in the model input frame. Returns logits (B, M, 4h, 4w) and IoU (B, M);
        with ``regions`` (the decoder's region-of-interest mode, :class:`~napari_sam.models.mask_decoder.
        TokenRegions`) logits (B, M, 4·height, 4·width) over each prompt's block of tokens.
        """
        sparse, dense = self.prompt_encoder(points, boxes, mask_logits)
        return self.mask_decoder(
            embedding,
            self.prompt_encoder.get_dense_pe(),
            sparse,
            dense,
            multimask,
            dense_is_constant=mask_logits is None,
            regions=regions,
        )
