"""``napari-sam finetune IMAGE... --labels LABELS... -o OUTDIR``: adapt a model to annotated images.

Writes ``OUTDIR/model.safetensors`` and ``OUTDIR/model.json``; the last line on standard output is the
weights path. Ctrl-C stops training and keeps the best model so far (a second Ctrl-C aborts).
"""

from __future__ import annotations

import argparse
import signal
import sys

from napari_sam.models import DEFAULT_MODEL


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE", help="TIFF/zarr/.npy images or stacks")
    p.add_argument(
        "--labels",
        nargs="+",
        required=True,
        metavar="LABELS",
        help="integer instance label images, one per IMAGE, same (H, W) / (P, H, W) shape; all-zero planes "
        "of a stack are skipped",
    )
    p.add_argument("-o", "--outdir", required=True, help="output folder (created)")
    p.add_argument("--base", default=DEFAULT_MODEL, help="registered model name or checkpoint file")
    p.add_argument("--minutes", type=float, default=4.0, help="time budget, embedding included (default 4)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument(
        "--encoder-adapters",
        action="store_true",
        help="also train low-rank adapters on the image encoder (slower; embeddings change)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the split, augmentations and batches")
    p.add_argument("--augment", type=int, default=1, help="augmented copies of each training plane")
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of objects held out (default 0.2)")
    p.add_argument("--channel-axis", type=int, default=None, help="channel axis of multichannel images")


def run(args: argparse.Namespace) -> int:
    from napari_sam.embeddings.embedder import Cancelled
    from napari_sam.finetune.api import finetune
    from napari_sam.finetune.progress import TqdmProgress, validation_summary

    stop = {"asked": False}

    def on_sigint(signum, frame):
        if stop["asked"]:  # the second Ctrl-C aborts
            raise KeyboardInterrupt
        stop["asked"] = True
        print("\nstopping: the best model so far will be saved (Ctrl-C again to abort)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    bar = TqdmProgress()
    try:
        model = finetune(
            list(args.images),
            list(args.labels),
            base=args.base,
            minutes=args.minutes,
            device=args.device,
            encoder_adapters=args.encoder_adapters,
            val_fraction=args.val_fraction,
            augment=args.augment,
            seed=args.seed,
            channel_axis=args.channel_axis,
            progress=bar,
            should_stop=lambda: stop["asked"],
            out=args.outdir,
        )
    except Cancelled:
        bar.close()
        print("stopped before training started: nothing was saved", file=sys.stderr)
        return 130
    finally:
        bar.close()
        signal.signal(signal.SIGINT, previous)
    report = model.report
    v = report["validation"]
    d = report["data"]
    print(
        f"fine-tuned {report['base']['name']} on {d['train_objects']} objects ({d['planes']} plane(s)) in "
        f"{report['time']['total_s']:.0f} s, stopped by {report['stopped_by']}; "
        f"{validation_summary(v).replace('→', '->')} ({d['val_objects']} held-out objects)"
    )
    print(model.checkpoint)
    return 0
