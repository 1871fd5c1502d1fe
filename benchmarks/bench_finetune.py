"""Fine-tuning on the user's own objects: train on the left half of the stardist nuclei, evaluate the right.

For each image variant (``original``; ``he`` and ``lowsnr`` from :mod:`napari_sam.io.sample_variants`):

* fine-tune LiteMedSAM on the objects lying wholly in the left half (default settings, a time budget);
* on the objects lying wholly in the right half, through the session (:class:`napari_sam.Segmenter`,
  default zoom rule), base vs fine-tuned: mean IoU of the answers to the ground-truth boxes, and the
  median IoU of one click at each object's innermost pixel;
* optionally (``--automatic``) the F1 at IoU 0.5 of segment-everything on the right half;
* when trained on a variant, also the box mIoU on the original's right half (does it forget?).

Wall times are of this machine as it is: record its load (other processes share the cores).

    python benchmarks/bench_finetune.py --minutes 4 --json-out /tmp/bench_finetune.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from scipy import ndimage


def halves(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) label images: objects wholly left of / right of the vertical midline."""
    mid = labels.shape[1] // 2
    left, right = np.zeros_like(labels), np.zeros_like(labels)
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        if box[1].stop <= mid:
            left[labels == label] = label
        elif box[1].start >= mid:
            right[labels == label] = label
    return left, right


def prompted_scores(model, image: np.ndarray, truth: np.ndarray, limit: int | None = None) -> dict:
    """Box mIoU and median click IoU over the objects of ``truth`` (the first ``limit`` labels), answered
    by the session.
    """
    from napari_sam.geometry.coords import innermost_pixel, mask_bbox
    from napari_sam.segmenter import Segmenter

    seg = Segmenter(model)
    seg.set_image(image)
    box_iou, click_iou = [], []
    for label in np.unique(truth)[1:][:limit]:
        obj = truth == label
        for store, kwargs in (
            (box_iou, {"box": mask_bbox(obj)}),
            (click_iou, {"points": [innermost_pixel(obj)]}),
        ):
            pred = seg.predict(**kwargs).masks[0]
            store.append(float((pred & obj).sum() / max((pred | obj).sum(), 1)))
    return {
        "objects": len(box_iou),
        "box_miou": round(float(np.mean(box_iou)), 4),
        "click_median_iou": round(float(np.median(click_iou)), 4),
    }


def automatic_f1(model, image: np.ndarray, truth: np.ndarray) -> float:
    from napari_sam.automatic import segment_everything
    from napari_sam.automatic.metrics import f1_score

    mid = image.shape[1] // 2
    pred = segment_everything(image, model=model)
    return round(f1_score(pred[:, mid:], truth[:, mid:]), 4)


def load_average() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.0, help="fine-tuning budget per variant")
    parser.add_argument("--variants", nargs="+", default=["original"], help="original he lowsnr")
    parser.add_argument("--automatic", action="store_true", help="also segment-everything F1 (slow)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learning-rate", type=float, default=None, help="default: finetune()'s own")
    parser.add_argument("--patience", type=int, default=None, help="default: finetune()'s own")
    parser.add_argument(
        "--encoder-adapters", action="store_true", help="also train LoRA adapters on the image encoder"
    )
    parser.add_argument("--augment", type=int, default=None, help="default: finetune()'s own")
    parser.add_argument(
        "--eval-objects", type=int, default=None, help="evaluate only the first N right-half objects"
    )
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)

    import torch

    from napari_sam.finetune import finetune
    from napari_sam.io.sample_variants import variant
    from napari_sam.io.samples import nuclei
    from napari_sam.models.loading import load_model

    img0, lab0 = nuclei()
    base = load_model("lite_medsam", device=args.device)
    _, right0 = halves(lab0.astype(np.int32))
    rows = []
    for name in args.variants:
        img, lab = variant(name, img0, lab0)
        left, right = halves(lab)
        row = {"variant": name, "train_objects": int(len(np.unique(left)) - 1)}
        load_before = load_average()
        t0 = time.perf_counter()
        tuned = finetune(
            img,
            left,
            base=base,
            minutes=args.minutes,
            device=args.device,
            seed=args.seed,
            **({"learning_rate": args.learning_rate} if args.learning_rate else {}),
            **({"patience": args.patience} if args.patience else {}),
            **({"augment": args.augment} if args.augment is not None else {}),
            encoder_adapters=args.encoder_adapters,
        )
        row["finetune_wall_s"] = round(time.perf_counter() - t0, 1)
        row["load_average_before_after"] = [load_before, load_average()]
        row["stopped_by"] = tuned.report["stopped_by"]
        if args.encoder_adapters:
            row["phases"] = tuned.report["validation"]["phases"]
        v = tuned.report["validation"]
        shown = ("before", "after", "click_before", "click_after")
        row["internal_validation"] = {k: v[k] for k in shown if k in v}
        row["time"] = tuned.report["time"]
        row["base"] = prompted_scores(base, img, right, args.eval_objects)
        row["finetuned"] = prompted_scores(tuned, img, right, args.eval_objects)
        if name != "original":
            row["original_box_miou_base_vs_finetuned"] = (
                prompted_scores(base, img0, right0, args.eval_objects)["box_miou"],
                prompted_scores(tuned, img0, right0, args.eval_objects)["box_miou"],
            )
        if args.automatic:
            row["automatic_f1_base_vs_finetuned"] = (
                automatic_f1(base, img, right),
                automatic_f1(tuned, img, right),
            )
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "minutes": args.minutes,
        "eval_objects": args.eval_objects,
        "rows": rows,
    }
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(result, fh, indent=1)
    for row in rows:
        b, f = row["base"], row["finetuned"]
        print(
            f"{row['variant']:<9} box mIoU {b['box_miou']:.3f} -> {f['box_miou']:.3f}   click median IoU "
            f"{b['click_median_iou']:.3f} -> {f['click_median_iou']:.3f}   "
            f"fine-tune {row['finetune_wall_s']:.0f} s",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
