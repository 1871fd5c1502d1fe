"""The image encoder's options, shared by the commands that encode (``embed``, ``label``)."""

from __future__ import annotations

import argparse

from napari_sam.models.device import PRECISIONS
from napari_sam.models.openvino_encoder import BACKENDS


def add_encoder_options(p: argparse.ArgumentParser) -> None:
    """``--precision`` and ``--backend`` (see :func:`~napari_sam.models.loading.load_model`)."""
    p.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="image encoder precision: auto (bf16 where the hardware computes faster in bf16), fp32, bf16",
    )
    p.add_argument(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help="what runs the image encoder: auto (OpenVINO where it is installed and measured faster: "
        "LiteMedSAM in bf16 on a CPU), torch, openvino (CPU only)",
    )


def encoder_settings(args: argparse.Namespace) -> dict[str, str]:
    """``{"precision": ..., "backend": ...}`` from the options :func:`add_encoder_options` added, as
    keyword arguments of :class:`~napari_sam.segmenter.Segmenter` and
    :class:`~napari_sam.batch.plan.BatchConfig`.
    """
    return {"precision": args.precision, "backend": args.backend}
