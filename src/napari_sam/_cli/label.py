"""``napari-sam label INPUT... -o OUTDIR``: label images and stacks in batch, locally or on dask."""

from __future__ import annotations

import argparse
import json

from napari_sam._cli.encoder_options import add_encoder_options, encoder_settings
from napari_sam.models import DEFAULT_MODEL


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="TIFF/OME-TIFF/zarr files, glob patterns (quoted) or folders",
    )
    p.add_argument("-o", "--outdir", required=True, help="output folder (created)")
    p.add_argument(
        "--mode",
        choices=["auto", "prompts"],
        default="auto",
        help="auto: segment everything; prompts: the objects in --prompts files",
    )
    p.add_argument(
        "--prompts",
        help="napari Points/Shapes CSV or JSON (one for all inputs), or a folder "
        "with STEM.csv / STEM.points.csv / STEM.shapes.csv / STEM.json per input",
    )
    p.add_argument(
        "--auto-mode",
        choices=["points", "boxes"],
        default=None,
        help="automatic method (default: the model's own: boxes for LiteMedSAM/MedSAM, points for SAM)",
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="automatic-mode parameter override, e.g. --param pred_iou_thresh=0.6 (repeatable)",
    )
    p.add_argument("--format", dest="fmt", choices=["tiff", "ome-zarr"], default="tiff", help="output format")
    p.add_argument("--model", default=DEFAULT_MODEL, help="registered model name or checkpoint file")
    p.add_argument("--device", default="auto", help="auto (each worker's GPU if any), cpu, cuda, cuda:1, mps")
    add_encoder_options(p)
    p.add_argument(
        "--compile",
        action="store_true",
        help="run the image encoder through torch.compile (about 20 s to compile; pays on a GPU, long jobs)",
    )
    p.add_argument(
        "--per-plane",
        action="store_true",
        help="stacks: label each plane on its own (2D labels) instead of linking objects through z",
    )
    p.add_argument(
        "--link-iou",
        type=float,
        default=None,
        help="overlap that links objects of adjacent planes (default: --mode auto as segment_stack links "
        "them, 0.5 of the smaller object; prompts an IoU of 0.3)",
    )
    p.add_argument(
        "--workers", type=int, default=None, help="start a dask LocalCluster with N worker processes"
    )
    p.add_argument(
        "--scheduler", default=None, help="join a running dask.distributed scheduler (tcp://host:8786)"
    )
    p.add_argument(
        "--threads", type=int, default=1, help="local threads when neither --workers nor --scheduler"
    )
    p.add_argument(
        "--axes",
        default=None,
        help="the inputs' axes in stored order, one letter each, for files that do not declare theirs "
        "(ImageJ and OME files do): e.g. CYX (channels), ZCYX, TYX; C is a channel axis, Y and X the plane, "
        "any other letter the plane axis of a stack",
    )
    p.add_argument(
        "--channel",
        type=int,
        default=None,
        help="segment only this channel (0-based) of multichannel inputs, e.g. the nuclei's (default: the "
        "first three channels as one colour image)",
    )
    p.add_argument("--overwrite", action="store_true", help="redo inputs whose outputs are complete")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_params(items: list[str]) -> dict | None:
    """``NAME=VALUE`` strings → dict (values read as JSON when they parse, else kept as text)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--param expects NAME=VALUE, got {item!r}")
        name, value = item.split("=", 1)
        try:
            out[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[name.strip()] = value
    return out or None


def run(args: argparse.Namespace) -> int:
    from napari_sam.batch.run import BatchConfig, make_executor, run_batch

    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    if args.workers and args.scheduler:
        raise ValueError(
            "give either --workers (a new local cluster) or --scheduler (an existing one), not both"
        )
    config = BatchConfig(
        args.outdir,
        fmt=args.fmt,
        task=args.mode,
        model=args.model,
        device=args.device,
        **encoder_settings(args),
        compile=args.compile,
        auto_mode=args.auto_mode,
        params=parse_params(args.param),
        link=not args.per_plane,
        min_link_iou=args.link_iou,
        prompts=args.prompts,
        overwrite=args.overwrite,
        axes=args.axes,
        channel=args.channel,
    )
    executor = make_executor(args.workers, args.scheduler, args.threads)
    try:
        report = run_batch(args.inputs, config, executor=executor, progress=not args.no_progress)
    finally:
        executor.close()
    print(
        f"{len(report.done)} labelled, {len(report.skipped)} already complete, {len(report.failed)} failed "
        f"({report.planes} planes in {report.seconds:.1f} s); outputs in {config.outdir}"
    )
    for name, message in report.failed:
        print(f"  failed: {name}: {message}")
    return 0 if report.ok else 1
