"""The image encoder compiled for the CPU, its weights frozen into the compiled code.

``torch.compile`` with inductor's *freezing* treats the weights as constants: it folds them into the
graph, lays them out once for oneDNN (pre-packed), and fuses the layer norms, GELUs and copies around
the matrix products. Our eager kernels (:mod:`~napari_sam.models.fused`) stand aside while it traces, so
it sees the plain ops. On the AMD EPYC with AVX-512 BF16 (2 threads, one 256² LiteMedSAM window,
``/tmp/s14comp2.py``): the bf16 copy ran in 0.127–0.137 s compiled against 0.153–0.163 s eager, relative
difference of the embeddings 0.009. Compiling takes 11–17 s on two cores, once per process and batch
size, so it pays for long jobs (``napari-sam label --compile``, ``load_model(compile=True)``), not for
opening one image.

Frozen weights are a copy: when the encoder's tensors change (a fine-tune merging adapters, a new
checkpoint loaded into it), the next call compiles again.
"""

from __future__ import annotations

import torch

from napari_sam.models.bf16_weights import WeightCopy
from napari_sam.models.fallback import fall_back


class FrozenCompiled:
    """Callable ``(encoder, x) -> embeddings``: ``encoder`` as a compiled, weight-frozen copy in ``dtype``
    on (B, 3, S, S) float32 inputs, returning float32 (B, C, h, w) embeddings.

    Parameters
    ----------
    dtype
        ``torch.bfloat16`` (CPUs with bf16 units) or ``torch.float32``.
    """

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype
        self._weights = WeightCopy(dtype)
        self._compiled = None
        self.failed: str | None = None  # why compiling failed, once it did

    def __call__(self, encoder: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        frozen, remade = self._weights.current(encoder)
        if remade:
            self._compiled = torch.compile(frozen, dynamic=False)
        if self.failed is not None:  # no compiler here: the same copy, eagerly
            with torch.inference_mode():
                return frozen(x.to(self.dtype)).float()
        from torch._inductor import config as inductor_config

        # compilation happens on a new shape's first call; freezing is read then
        try:
            with torch.inference_mode(), inductor_config.patch(freezing=True):
                return self._compiled(x.to(self.dtype)).float()
        except Exception as err:  # e.g. no C++ compiler for inductor's CPU kernels
            self.failed = fall_back(
                err,
                "torch.compile could not compile the image encoder on this CPU ({failed}); it runs "
                "uncompiled. Install a C++ compiler (e.g. g++) to compile it.",
            )
            return self(encoder, x)
