"""SAM's prompt encoder: points, boxes and a low-resolution mask → sparse and dense embeddings.

All coordinates here are SAM's (x, y) in the model's input frame (pixels of the resized, padded
``input_size × input_size`` image). Conversion from napari's (row, col) happens in
:mod:`napari_sam.geometry.coords`, nowhere else.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from napari_sam.models.layers import LayerNorm2d


class RandomFourierPositions(nn.Module):
    """Positional encoding of normalised (x, y) coordinates by random Fourier features."""

    def __init__(self, num_feats: int = 128) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_feats))

    def encode(self, coords01: torch.Tensor) -> torch.Tensor:
        """(..., 2) coordinates in [0, 1] → (..., 2·num_feats) features."""
        proj = (2 * coords01 - 1) @ self.positional_encoding_gaussian_matrix
        proj = 2 * math.pi * proj
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)

    def grid(self, h: int, w: int) -> torch.Tensor:
        """Encoding of the centres of an (h, w) grid → (C, h, w)."""
        dev = self.positional_encoding_gaussian_matrix.device
        ys = (torch.arange(h, device=dev, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=dev, dtype=torch.float32) + 0.5) / w
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        return self.encode(torch.stack([xx, yy], dim=-1)).permute(2, 0, 1)

    def points(self, xy: torch.Tensor, input_size: tuple[int, int]) -> torch.Tensor:
        """Pixel coordinates (x, y) in an (H, W) input frame → features."""
        scale = torch.tensor([1.0 / input_size[1], 1.0 / input_size[0]], device=xy.device)
        return self.encode(xy.float() * scale)


class PromptEncoder(nn.Module):
    """Embeds prompts for the mask decoder.

    Parameters
    ----------
    embed_dim
        Channels of the image embedding (256 for every SAM model).
    embedding_size
        (h, w) of the image embedding grid, e.g. (64, 64).
    input_size
        (H, W) of the model input in pixels, e.g. (1024, 1024) or (256, 256).
    mask_in_chans
        Hidden channels of the mask-prompt downscaler.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        embedding_size: tuple[int, int] = (64, 64),
        input_size: tuple[int, int] = (1024, 1024),
        mask_in_chans: int = 16,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.embedding_size = tuple(embedding_size)
        self.input_size = tuple(input_size)
        self.pe_layer = RandomFourierPositions(embed_dim // 2)
        # 0: negative point, 1: positive point, 2: box top-left, 3: box bottom-right
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)
        self._dense_pe: torch.Tensor | None = None

    def get_dense_pe(self) -> torch.Tensor:
        """Positional encoding of the embedding grid, (1, C, h, w) float32; computed once per device, always
        in full precision (a first call under bf16 autocast must not leave a rounded grid for fp32 calls).
        """
        pe = self._dense_pe
        dev = self.positional_encoding_device
        if pe is None or pe.device != dev:
            with torch.autocast(dev.type, enabled=False):
                pe = self.pe_layer.grid(*self.embedding_size)[None].float()
            self._dense_pe = pe
        return pe

    @property
    def positional_encoding_device(self) -> torch.device:
        return self.pe_layer.positional_encoding_gaussian_matrix.device

    def _apply(self, fn, recurse=True):  # a new device or dtype invalidates the cached grid encoding
        self._dense_pe = None
        return super()._apply(fn, recurse)

    def embed_points(self, xy: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        """(B, N, 2) pixel (x, y) and (B, N) labels (1 positive, 0 negative, -1 padding) → (B, N', C)."""
        xy = xy + 0.5  # pixel centres
        if pad:
            xy = torch.cat([xy, torch.zeros_like(xy[:, :1])], dim=1)
            labels = torch.cat([labels, -torch.ones_like(labels[:, :1])], dim=1)
        emb = self.pe_layer.points(xy, self.input_size)
        lab = labels[..., None]
        emb = torch.where(lab == -1, self.not_a_point_embed.weight.expand_as(emb), emb)
        emb = emb + torch.where(lab == 0, self.point_embeddings[0].weight, 0.0)
        emb = emb + torch.where(lab == 1, self.point_embeddings[1].weight, 0.0)
        return emb

    def embed_boxes(self, boxes_xyxy: torch.Tensor) -> torch.Tensor:
        """(B, 4) boxes (x0, y0, x1, y1) in pixels → (B, 2, C) corner embeddings."""
        corners = (boxes_xyxy.float() + 0.5).reshape(-1, 2, 2)
        emb = self.pe_layer.points(corners, self.input_size)
        corner_type = torch.cat([self.point_embeddings[2].weight, self.point_embeddings[3].weight])
        return emb + corner_type

    def forward(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sparse (B, N, C) and dense (B, C, h, w) prompt embeddings.

        ``masks`` are low-resolution logits (B, 1, 4h, 4w). Without a mask the dense embedding is the
        learned "no mask" vector, returned with batch size 1 (it broadcasts in the decoder).
        """
        bs = (
            points[0].shape[0]
            if points is not None
            else boxes.shape[0]
            if boxes is not None
            else (masks.shape[0] if masks is not None else 1)
        )
        dev = self.positional_encoding_device
        sparse = [torch.empty(bs, 0, self.embed_dim, device=dev)]
        if points is not None:
            sparse.append(self.embed_points(points[0], points[1], pad=boxes is None))
        if boxes is not None:
            sparse.append(self.embed_boxes(boxes))
        sparse_emb = torch.cat(sparse, dim=1)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, *self.embedding_size)
        return sparse_emb, dense
