"""``napari-sam models list|fetch NAME``."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["list", "fetch"])
    p.add_argument("name", nargs="?", help="registered model name (for fetch)")
    p.add_argument(
        "--cache-dir",
        default=None,
        help="checkpoint cache (default: $NAPARI_SAM_CACHE or ~/.cache/napari-sam)",
    )


def run(args: argparse.Namespace) -> int:
    from napari_sam.models.checkpoints import checkpoint_path, fetch_checkpoint
    from napari_sam.models.registry import DEFAULT_MODEL, MODELS, get_spec

    if args.action == "list":
        for name, spec in MODELS.items():
            path = checkpoint_path(spec, args.cache_dir)
            state = "cached" if path.exists() else spec.checkpoint.kind
            default = " (default)" if name == DEFAULT_MODEL else ""
            print(f"{name:<16} {spec.input_size:>5}px  {state:<10} {spec.description}{default}")
        from napari_sam.finetune.artifact import cached_finetunes

        for name, path, sidecar in cached_finetunes(args.cache_dir):
            v = sidecar.get("validation", {})
            print(
                f"{name:<16} {'':>7}  {'fine-tune':<10} {sidecar.get('architecture')} fine-tuned on "
                f"{sidecar.get('data', {}).get('objects')} objects (val box mIoU {v.get('before')} -> "
                f"{v.get('after')}): {path}"
            )
        return 0
    if not args.name:
        raise ValueError("which model? e.g. napari-sam models fetch lite_medsam")
    spec = get_spec(args.name)
    path = fetch_checkpoint(spec, args.cache_dir)
    print(f"{spec.name}: {path} (sha256 {spec.checkpoint.sha256})")
    _prepare_openvino(spec, args.cache_dir)
    return 0


def _prepare_openvino(spec, cache_dir) -> None:
    """Where ``backend="auto"`` runs this model through OpenVINO here, export its encoder now, so that the
    first image opened does not wait for it (about 8 s, once).
    """
    import time

    import torch

    from napari_sam.models.device import resolve_precision
    from napari_sam.models.loading import load_model
    from napari_sam.models.openvino_encoder import resolve_backend

    cpu = torch.device("cpu")
    if resolve_backend("auto", cpu, resolve_precision("auto", cpu), spec) != "openvino":
        return
    t0 = time.perf_counter()
    model = load_model(spec.name, device="cpu", cache_dir=cache_dir)
    model.prepare_encoder()
    if model.openvino_encoder.failed is None:
        seconds = time.perf_counter() - t0
        print(f"{spec.name}: image encoder ready for OpenVINO ({seconds:.1f} s, kept in the cache)")
