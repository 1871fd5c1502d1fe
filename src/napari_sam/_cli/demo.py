"""``napari-sam demo -o OUT``: the main job, end to end on a fresh machine.

Writes a sample TIFF stack made from the packaged nuclei image, labels it with the default model through
the same batch path as ``napari-sam label`` (local threads), links the objects through the planes, and
writes the labels, an overlay PNG, the JSON summary and the accuracy against the known ground truth.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from napari_sam.models import DEFAULT_MODEL


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--outdir", default="out", help="output folder (default: out)")
    p.add_argument("--planes", type=int, default=3, help="planes in the sample stack (default 3)")
    p.add_argument(
        "--size", type=int, default=256, help="side of the sample planes in pixels (≤ 512; default 256)"
    )
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"registered model name or checkpoint path (default {DEFAULT_MODEL})",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--format", dest="fmt", choices=["tiff", "ome-zarr"], default="tiff")
    p.add_argument("--no-progress", action="store_true")


def write_sample(path: Path, planes: int, size: int) -> np.ndarray:
    """Write the sample stack (planes, size, size) uint16 as a TIFF; return its ground-truth labels."""
    import tifffile

    from napari_sam.io.samples import nuclei_stack

    if not 16 <= size <= 512:
        raise ValueError(f"--size must be between 16 and 512 pixels, got {size}")
    if planes < 1:
        raise ValueError(f"--planes must be at least 1, got {planes}")
    stack, truth = nuclei_stack(planes)
    r0 = (stack.shape[1] - size) // 2
    stack, truth = stack[:, r0 : r0 + size, r0 : r0 + size], truth[:, r0 : r0 + size, r0 : r0 + size]
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, stack, metadata={"axes": "ZYX"}, compression="zlib")
    return truth


def overlay_png(path: Path, image: np.ndarray, labels: np.ndarray) -> Path:
    """Planes side by side: the image in gray with each object's outline in its own colour."""
    from skimage.io import imsave
    from skimage.segmentation import find_boundaries

    tiles = []
    rng = np.random.default_rng(0)
    colours = rng.integers(64, 256, size=(int(labels.max(initial=0)) + 1, 3)).astype(np.uint8)
    for img, lab in zip(image, labels):
        lo, hi = np.percentile(img, (0.5, 99.5))
        gray = (np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)
        rgb = np.repeat(gray[..., None], 3, axis=-1)
        edge = find_boundaries(lab, mode="inner")
        rgb[edge] = colours[lab[edge]]
        tiles.append(rgb)
        tiles.append(np.full((rgb.shape[0], 4, 3), 255, np.uint8))
    imsave(path, np.concatenate(tiles[:-1], axis=1), check_contrast=False)
    return path


def run(args: argparse.Namespace) -> int:
    import tifffile

    from napari_sam.automatic.metrics import match_scores
    from napari_sam.batch.run import BatchConfig, run_batch
    from napari_sam.io.labels import read_labels

    out = Path(args.outdir)
    sample = out / "sample" / "nuclei_stack.tif"
    truth = write_sample(sample, args.planes, args.size)
    print(f"sample stack: {sample} ({args.planes} planes of {args.size}x{args.size})")
    config = BatchConfig(out / "labels", fmt=args.fmt, model=args.model, device=args.device, overwrite=True)
    report = run_batch([sample], config, progress=not args.no_progress)
    if not report.ok:
        for name, message in report.failed:
            print(f"failed: {name}: {message}")
        return 1
    summary = report.done[0]
    labels = read_labels(summary["output"])
    scores = [match_scores(labels[z], truth[z]) for z in range(len(labels))]
    f1 = float(np.mean([s["f1"] for s in scores]))
    png = overlay_png(out / "overlay.png", tifffile.imread(sample), labels)
    summary_path = Path(config.outdir) / "nuclei_stack.labels.json"
    accuracy = {
        "f1_at_iou_0.5_per_plane": [round(s["f1"], 4) for s in scores],
        "mean_f1": round(f1, 4),
        "ground_truth": "napari_sam.io.samples.nuclei_stack (stardist 0.9.2 mask2d.tif)",
    }
    (out / "accuracy.json").write_text(json.dumps(accuracy, indent=2) + "\n")
    print(
        f"labels:   {summary['output']} ({summary['objects']} objects linked through "
        f"{summary['planes']} planes, "
        f"{summary['seconds']:.1f} s, model {summary['model']})"
    )
    print(f"summary:  {summary_path}")
    print(f"overlay:  {png}")
    print(f"accuracy: {out / 'accuracy.json'} (mean F1 at IoU 0.5 vs ground truth: {f1:.3f})")
    return 0
