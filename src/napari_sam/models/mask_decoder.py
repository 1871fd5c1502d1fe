"""SAM's mask decoder: a two-way transformer between prompt tokens and the image embedding, 3+1 mask
tokens, an IoU head and a transposed-convolution upscaler.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from napari_sam.models.fused import apply_linear, linear
from napari_sam.models.layers import FeedForward, LayerNorm2d, StackedLinear


def _deconv2x2(
    x: torch.Tensor, deconv: nn.ConvTranspose2d, act: str | None = None, shuffle: bool = True
) -> torch.Tensor:
    """ConvTranspose2d(kernel 2, stride 2) (then ``act``) on (B, h, w, Cin) → (B, 2h, 2w, Cout), channels
    last.

    With ``shuffle=False`` the 2×2 blocks stay apart: (B, h, w, 2, 2, Cout), pixel (2i+di, 2j+dj) at
    [i, j, di, dj] (an elementwise activation commutes with the reshuffle).
    """
    b, h, w, _ = x.shape
    weight = deconv.weight  # (Cin, Cout, 2, 2)
    cout = weight.shape[1]
    as_linear = weight.permute(2, 3, 1, 0).reshape(4 * cout, -1)  # rows ordered (di, dj, out)
    y = linear(x, as_linear, deconv.bias.repeat(4), act).view(b, h, w, 2, 2, cout)
    if not shuffle:
        return y
    return y.permute(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, cout)


@dataclass(frozen=True)
class TokenRegions:
    """The region-of-interest mode of :class:`MaskDecoder`: per prompt, the part of the (h, w) token grid
    whose mask logits are wanted.

    The upscaler's transposed convolutions (kernel 2, stride 2) are local, so the logits over a block of
    tokens depend only on those tokens: upscaling just each prompt's block gives exactly the logits the
    whole grid would give there, at a fraction of the work for small objects.

    Attributes
    ----------
    rows, cols
        (B,) first token row / column of each prompt's block in the embedding's (h, w) grid.
    height, width
        The blocks' common size in tokens (all inside the grid).
    context
        None: the transformer sees the whole grid (exact). An int: it sees only each prompt's block grown
        by this many tokens on every side (clipped to the grid): an approximation that costs a fraction
        of the work for small objects, because attention far from the object is negligible.
    """

    rows: tuple[int, ...]
    cols: tuple[int, ...]
    height: int
    width: int
    context: int | None = None

    def context_view(self, h: int, w: int) -> tuple[list[int], list[int], int, int]:
        """Per prompt, the origin (rows, cols) of the context block the transformer sees, and its common
        (height, width), for an (h, w) grid.
        """
        ch, cw = min(h, self.height + 2 * self.context), min(w, self.width + 2 * self.context)
        rows = [min(max(0, r - self.context), h - ch) for r in self.rows]
        cols = [min(max(0, c - self.context), w - cw) for c in self.cols]
        return rows, cols, ch, cw


def _crop_stack(
    x: torch.Tensor, rows, cols, height: int, width: int, channels_last: bool = False
) -> torch.Tensor:
    """One (height, width) block per prompt from (1 or B, C, h, w) maps, or (1 or B, h, w, C) with
    ``channels_last``: (B, C, height, width) or (B, height, width, C).
    """
    last = x.shape[0] - 1
    if channels_last:
        blocks = [x[min(i, last), r : r + height, c : c + width] for i, (r, c) in enumerate(zip(rows, cols))]
    else:
        blocks = [
            x[min(i, last), :, r : r + height, c : c + width] for i, (r, c) in enumerate(zip(rows, cols))
        ]
    return torch.stack(blocks)


class TokenAttention(nn.Module):
    """Multi-head attention with an optional down-projection of the internal width."""

    def __init__(self, dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        inner = dim // downsample_rate
        if inner % num_heads:
            raise ValueError(f"attention width {inner} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, inner)
        self.k_proj = nn.Linear(dim, inner)
        self.v_proj = nn.Linear(dim, inner)
        self.out_proj = nn.Linear(inner, dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.view(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q = self._heads(apply_linear(self.q_proj, q))
        k = self._heads(apply_linear(self.k_proj, k))
        v = self._heads(apply_linear(self.v_proj, v))
        b = max(q.shape[0], k.shape[0])  # one image shared by all prompts: broadcast, do not copy
        q, k, v = q.expand(b, -1, -1, -1), k.expand(b, -1, -1, -1), v.expand(b, -1, -1, -1)
        if q.device.type == "cpu" and min(q.shape[2], k.shape[2]) <= 64:
            # Prompt tokens are few: plain matmuls beat the flash kernel's per-call overhead on the CPU.
            scores = torch.matmul(q, k.transpose(-2, -1)).mul_(q.shape[-1] ** -0.5)
            out = torch.matmul(torch.softmax(scores, dim=-1), v)
        else:
            out = F.scaled_dot_product_attention(q, k, v)
        b, h, n, d = out.shape
        return apply_linear(self.out_proj, out.transpose(1, 2).reshape(b, n, h * d))

    def _split_weight(self, linear_layer: nn.Linear) -> torch.Tensor:
        """(inner, C) weight → (heads, head_dim, C)."""
        w = linear_layer.weight
        return w.view(self.num_heads, w.shape[0] // self.num_heads, w.shape[1])

    def tokens_attend_image(
        self,
        tokens_q: torch.Tensor,
        image_k: torch.Tensor,
        image_v: torch.Tensor,
        image_pe: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Same result as ``forward(tokens_q, image_k + image_pe, image_v)`` (``image_pe`` None: keys
        ``image_k`` alone) without projecting the N image tokens, and without forming the keys' sum.

        Keys and values are linear in the image, and each softmax row sums to one, so the projections
        move onto the few prompt tokens: q·(W_k x + b_k) = (W_kᵀq)·x + const (the constant cancels in
        the softmax) and P·(x W_vᵀ + b_v) = (P·x) W_vᵀ + b_v. The keys' positional term is a product of
        its own, (W_kᵀq)·pe, cheaper than an image-sized sum. Image tokens: (1 or B, N, C).
        """
        b, t, _ = tokens_q.shape
        h = self.num_heads
        q = self._heads(apply_linear(self.q_proj, tokens_q))  # (B, h, T, d)
        qk = torch.matmul(q, self._split_weight(self.k_proj)).reshape(b, h * t, -1)  # (B, hT, C)
        qk = qk * q.shape[-1] ** -0.5
        scores = _batched_mm(qk, image_k.transpose(1, 2))  # (B, hT, N)
        if image_pe is not None:
            scores = scores + _batched_mm(qk, image_pe.transpose(1, 2))
        probs = torch.softmax(scores, dim=-1)
        mixed = _batched_mm(probs, image_v).view(b, h, t, -1)  # (B, h, T, C)
        out = torch.matmul(mixed, self._split_weight(self.v_proj).transpose(1, 2))  # (B, h, T, d)
        out = out + self.v_proj.bias.view(h, 1, -1)
        return apply_linear(self.out_proj, out.transpose(1, 2).reshape(b, t, -1))

    def image_attends_tokens(
        self,
        image_q: torch.Tensor,
        tokens_k: torch.Tensor,
        tokens_v: torch.Tensor,
        image_pe: torch.Tensor | None = None,
        residual: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Same result as ``residual + forward(image_q + image_pe, tokens_k, tokens_v)`` without
        projecting the N image tokens, and without forming ``image_q + image_pe`` (``image_pe`` None:
        ``image_q`` alone; ``residual`` None: nothing added).

        (W_q x + b_q)·k = x·(W_qᵀk) + b_q·k, and the output projection of P·v is P·(v W_oᵀ) + b_o, so both
        image-sized matrix products shrink to (N × C) · (C × heads·T). The scores are laid out (B, hT, N),
        image axis last: the softmax over each head's few tokens then runs along contiguous rows of N
        values, about 10× faster on the CPU than over a last axis of T values. Each head's
        probabilities sum to one, so the output bias b_o is P·(b_o / heads) and joins the values, and the
        residual is added by the last product itself (no image-sized sums).
        """
        b, t, _ = tokens_k.shape
        h = self.num_heads
        k = self._heads(apply_linear(self.k_proj, tokens_k))  # (B, h, T, d)
        scale = k.shape[-1] ** -0.5
        kq = torch.matmul(k, self._split_weight(self.q_proj)).reshape(b, h * t, -1) * scale  # (B, hT, C)
        bias = torch.matmul(k, self.q_proj.bias.view(h, -1, 1)).reshape(b, h * t, 1) * scale
        scores = _batched_mm(kq, image_q.transpose(1, 2)) + bias  # (B, hT, N)
        if image_pe is not None:
            scores = scores + _batched_mm(kq, image_pe.transpose(1, 2))
        n = scores.shape[-1]
        probs = torch.softmax(scores.view(b, h, t, n), dim=2).view(b, h * t, n)
        v = self._heads(apply_linear(self.v_proj, tokens_v))  # (B, h, T, d)
        wo = self.out_proj.weight.view(-1, h, v.shape[-1]).permute(1, 2, 0)  # (h, d, C)
        values_out = torch.matmul(v, wo).reshape(b, h * t, -1) + self.out_proj.bias / h  # (B, hT, C)
        if residual is None:
            return torch.bmm(probs.transpose(1, 2), values_out)
        return torch.baddbmm(residual.expand(b, -1, -1), probs.transpose(1, 2), values_out)


def _matmul_dtype(x: torch.Tensor) -> torch.Tensor:
    """``x`` in the dtype autocast gives matrix products (itself outside autocast): an image-sized
    activation used by several products is then cast once rather than by each of them.
    """
    kind = x.device.type
    if torch.is_autocast_enabled(kind):
        return x.to(torch.get_autocast_dtype(kind))
    return x


def _batched_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(Ba, n, k) @ (Bb, k, m) with Ba or Bb equal to 1 broadcast as one large GEMM, not copies."""
    if a.shape[0] == b.shape[0]:
        return torch.bmm(a, b)
    if b.shape[0] == 1:  # shared right operand: stack the left rows
        return torch.matmul(a.reshape(-1, a.shape[-1]), b[0]).view(a.shape[0], a.shape[1], -1)
    # shared left operand (the image): one (n, k) @ (k, B·m) product
    out = torch.matmul(a[0], b.transpose(0, 1).reshape(b.shape[1], -1))  # (n, B·m)
    return out.view(a.shape[1], b.shape[0], -1).transpose(0, 1)


class TwoWayBlock(nn.Module):
    """Self-attention of tokens, tokens→image, token MLP, image→tokens."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, downsample: int, skip_first_pe: bool) -> None:
        super().__init__()
        self.self_attn = TokenAttention(dim, num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn_token_to_image = TokenAttention(dim, num_heads, downsample)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, mlp_dim, act="relu")
        self.norm3 = nn.LayerNorm(dim)
        self.norm4 = nn.LayerNorm(dim)
        self.cross_attn_image_to_token = TokenAttention(dim, num_heads, downsample)
        self.skip_first_pe = skip_first_pe

    def forward(
        self,
        tokens: torch.Tensor,
        image: torch.Tensor,
        token_pe: torch.Tensor,
        image_pe: torch.Tensor,
        image_k: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``image_k`` is ``image + image_pe`` when the caller has it already."""
        if self.skip_first_pe:
            tokens = self.self_attn(tokens, tokens, tokens)
        else:
            q = tokens + token_pe
            tokens = tokens + self.self_attn(q, q, tokens)
        tokens = self.norm1(tokens)
        # keys: the given sum (shared by all prompts), else image + image_pe left unformed
        values = _matmul_dtype(image)  # cast once for the products below, not once per product
        keys, keys_pe = (values, image_pe) if image_k is None else (image_k, None)
        tokens = self.norm2(
            tokens
            + self.cross_attn_token_to_image.tokens_attend_image(tokens + token_pe, keys, values, keys_pe)
        )
        tokens = self.norm3(tokens + self.mlp(tokens))
        q = tokens + token_pe
        image = self.cross_attn_image_to_token.image_attends_tokens(keys, q, tokens, keys_pe, residual=image)
        return tokens, self.norm4(image)


class TwoWayTransformer(nn.Module):
    def __init__(
        self, depth: int = 2, dim: int = 256, num_heads: int = 8, mlp_dim: int = 2048, downsample: int = 2
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayBlock(dim, num_heads, mlp_dim, downsample, skip_first_pe=(i == 0)) for i in range(depth)
        )
        self.final_attn_token_to_image = TokenAttention(dim, num_heads, downsample)
        self.norm_final_attn = nn.LayerNorm(dim)

    @staticmethod
    def image_tokens(
        image: torch.Tensor, image_pe: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The prompt-independent inputs of the first block: image (1 or B, C, h, w) and image_pe
        (1, C, h, w) as contiguous tokens (·, h·w, C), and their sum (the first block's keys).
        """
        image = image.flatten(2).transpose(1, 2).contiguous()
        image_pe = image_pe.flatten(2).transpose(1, 2).contiguous()
        return image, image_pe, image + image_pe

    def forward(
        self,
        image: torch.Tensor,
        image_pe: torch.Tensor,
        tokens: torch.Tensor,
        prepared: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Image (1 or B, C, h, w), image_pe (1, C, h, w), tokens (B, N, C) → tokens, image (B, h·w, C).

        ``prepared`` is :meth:`image_tokens` of (image, image_pe), when the caller kept it.
        """
        image, image_pe, image_k = prepared if prepared is not None else self.image_tokens(image, image_pe)
        token_pe = tokens
        # the image-sized stream in the products' precision: under bf16 autocast its residual sums and
        # layer norms then move half the bytes, and no product casts it again
        image, image_pe, image_k = (_matmul_dtype(x) for x in (image, image_pe, image_k))
        for i, layer in enumerate(self.layers):
            tokens, image = layer(tokens, image, token_pe, image_pe, image_k if i == 0 else None)
        values = _matmul_dtype(image)
        attn = self.final_attn_token_to_image.tokens_attend_image(tokens + token_pe, values, values, image_pe)
        return self.norm_final_attn(tokens + attn), image


class MaskDecoder(nn.Module):
    """Predicts low-resolution mask logits and their IoU from image and prompt embeddings."""

    def __init__(
        self,
        transformer_dim: int = 256,
        num_multimask_outputs: int = 3,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
    ) -> None:
        super().__init__()
        self.transformer = TwoWayTransformer(dim=transformer_dim)
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            StackedLinear(transformer_dim, transformer_dim, transformer_dim // 8, 3)
            for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = StackedLinear(
            transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth
        )
        self.prepared_cache_size = 2  # embeddings whose prompt-independent image terms are kept
        self._prepared_cache: OrderedDict[int, tuple] = OrderedDict()

    def upscaled_logits(self, x: torch.Tensor, hyper: torch.Tensor) -> torch.Tensor:
        """``output_upscaling`` on channels-last tokens (B, h, w, C), dotted with the hypernetwork
        outputs (B, M, C/8) → (B, M, 4h, 4w) logits.

        A 2×2 stride-2 transposed convolution is a linear map of each pixel to a 2×2 block; run as one
        matrix product it is several times faster on the CPU than the deconvolution. The last block
        reshuffle is done on the M-channel logits rather than the C/8-channel features.
        """
        up1, norm, _, up2, _ = self.output_upscaling
        x = F.gelu(
            F.layer_norm(_deconv2x2(x, up1), (norm.weight.shape[0],), norm.weight, norm.bias, norm.eps)
        )
        y = _deconv2x2(x, up2, act="gelu", shuffle=False)  # (B, 2h, 2w, 2, 2, C/8)
        b, h2, w2 = y.shape[:3]
        logits = torch.matmul(y.reshape(b, -1, y.shape[-1]), hyper.transpose(1, 2))  # (B, 2h·2w·4, M)
        logits = logits.view(b, h2, w2, 2, 2, -1).permute(0, 5, 1, 3, 2, 4)
        return logits.reshape(b, -1, 2 * h2, 2 * w2)

    def _prepared_image(
        self, image_embeddings: torch.Tensor, image_pe: torch.Tensor, dense: torch.Tensor, reusable: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The transformer's prompt-independent image inputs; kept for the last few embeddings when
        ``reusable`` (no mask prompt: ``dense`` is the constant no-mask embedding), so a new prompt on
        the same embedding skips three image-sized passes.
        """
        if not reusable or image_embeddings.shape[0] != 1 or torch.is_grad_enabled():
            return self.transformer.image_tokens(image_embeddings + dense, image_pe)
        key = id(image_embeddings)
        hit = self._prepared_cache.get(key)
        if hit is not None and hit[0]() is image_embeddings and hit[1] is image_pe:
            return hit[2]
        prepared = self.transformer.image_tokens(image_embeddings + dense, image_pe)
        # each dict operation is atomic: a decoder used from two threads at once (a preview on the main
        # thread while a worker propagates) may recompute an entry, never read a half-written one
        self._prepared_cache[key] = (weakref.ref(image_embeddings), image_pe, prepared)
        while len(self._prepared_cache) > self.prepared_cache_size:
            try:
                self._prepared_cache.popitem(last=False)  # the oldest first
            except KeyError:
                break
        return prepared

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse: torch.Tensor,
        dense: torch.Tensor,
        multimask_output: bool,
        dense_is_constant: bool = False,
        regions: TokenRegions | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode masks.

        Parameters
        ----------
        image_embeddings
            (1 or B, C, h, w); one embedding is shared by all B prompts without being copied.
        image_pe
            (1, C, h, w) positional encoding of the embedding grid.
        sparse
            (B, N, C) point and box embeddings.
        dense
            (1 or B, C, h, w) mask-prompt embedding.
        multimask_output
            True: the three ambiguity-aware masks; False: the single-mask token.
        dense_is_constant
            ``dense`` is the no-mask embedding (no mask prompt), so the image's prompt-independent
            terms may be reused for the next prompts on the same ``image_embeddings`` tensor (which
            must then not be modified in place).
        regions
            Region-of-interest mode (:class:`TokenRegions`): logits of each prompt's block of tokens
            only, optionally with a transformer that sees only the blocks' neighbourhoods.

        Returns
        -------
        logits
            (B, 3 or 1, 4h, 4w) float mask logits; with ``regions`` (B, 3 or 1, 4·height, 4·width), the
            top-left logit of prompt i's over token (``rows[i]``, ``cols[i]``).
        iou
            (B, 3 or 1) predicted IoU.
        """
        b = sparse.shape[0]
        out_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([out_tokens[None].expand(b, -1, -1), sparse], dim=1)
        h, w = image_embeddings.shape[-2:]
        if regions is not None and regions.context is not None:  # the transformer sees neighbourhoods
            rows, cols, h, w = regions.context_view(h, w)
            image = _crop_stack(image_embeddings + dense, rows, cols, h, w)
            prepared = self.transformer.image_tokens(image, _crop_stack(image_pe, rows, cols, h, w))
            regions = replace(
                regions,
                rows=tuple(r - r0 for r, r0 in zip(regions.rows, rows)),
                cols=tuple(c - c0 for c, c0 in zip(regions.cols, cols)),
            )
        else:
            prepared = self._prepared_image(image_embeddings, image_pe, dense, dense_is_constant)
        hs, src = self.transformer(None, None, tokens, prepared)
        iou_token_out = hs[:, 0]
        chosen = range(1, self.num_mask_tokens) if multimask_output else range(0, 1)
        hyper = torch.stack([self.output_hypernetworks_mlps[i](hs[:, 1 + i]) for i in chosen], dim=1)
        grid = src.reshape(b, h, w, -1)
        if regions is not None:
            grid = _crop_stack(grid, regions.rows, regions.cols, regions.height, regions.width, True)
        logits = self.upscaled_logits(grid, hyper)
        iou = self.iou_prediction_head(iou_token_out)[:, list(chosen)]
        return logits, iou
