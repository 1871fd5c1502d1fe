"""Automatic segmentation on the stardist nuclei image (512², ground truth known), default model.

Runs, in this order and in one run: ours (``segment_everything``, the model's default mode), the
official SamAutomaticMaskGenerator with the same LiteMedSAM weights (``reference.py amg``, the peers'
venv), and the classical Otsu + watershed baseline. Reports seconds, the time ratio ours / official,
and F1 at IoU 0.5 for all three. Prints a table, then one JSON line.

    .venv/bin/python benchmarks/bench_automatic.py [--skip-official] [--points-per-side 32]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-official", action="store_true", help="do not run the official generator (slow)")
    ap.add_argument("--points-per-side", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    import torch

    from napari_sam.automatic import match_scores, segment_everything
    from napari_sam.automatic.proposals import otsu_watershed
    from napari_sam.image.normalize import prepare_image
    from napari_sam.io.samples import NUCLEI_IMAGE, fetch_file, nuclei
    from napari_sam.models.loading import load_model

    torch.set_num_threads(args.threads)
    img, truth = nuclei()
    model = load_model("lite_medsam", device="cpu")
    rows = []

    t0 = time.perf_counter()
    labels, info = segment_everything(img, model=model, return_info=True)
    ours_s = time.perf_counter() - t0
    rows.append(("napari-sam " + info["mode"], ours_s, match_scores(labels, truth), int(labels.max())))

    t0 = time.perf_counter()
    prepared = prepare_image(img)
    classical = otsu_watershed(prepared.region(0, img.shape[0], 0, img.shape[1]).mean(axis=-1))
    rows.append(
        ("otsu+watershed", time.perf_counter() - t0, match_scores(classical, truth), int(classical.max()))
    )

    official = None
    if not args.skip_official:
        from _peers import run_reference

        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "amg.npz"
            line = run_reference(
                "amg",
                str(fetch_file(NUCLEI_IMAGE)),
                "--out",
                str(out),
                "--threads",
                str(args.threads),
                "--points-per-side",
                str(args.points_per_side),
            )
            official = json.loads(line.strip().splitlines()[-1])
            ref_labels = np.load(out)["labels"]
        rows.append(
            ("official AMG", official["seconds"], match_scores(ref_labels, truth), int(official["masks"]))
        )

    print(f"{'method':<22}{'seconds':>9}{'objects':>9}{'F1@0.5':>8}{'prec':>7}{'recall':>8}")
    for name, sec, s, n in rows:
        print(f"{name:<22}{sec:>9.1f}{n:>9}{s['f1']:>8.3f}{s['precision']:>7.3f}{s['recall']:>8.3f}")
    result = {
        "bench": "automatic",
        "image": "stardist img2d.tif 512x512",
        "model": "lite_medsam",
        "mode": info["mode"],
        "ours_s": ours_s,
        "ours_f1": rows[0][2]["f1"],
        "ours_windows_encoded": info.get("encoded_windows"),
        "ours_prompts_decoded": info.get("decoded"),
        "otsu_watershed_f1": rows[1][2]["f1"],
        "threads": args.threads,
    }
    if official is not None:
        result.update(
            {
                "official_s": official["seconds"],
                "official_f1": rows[2][2]["f1"],
                "official_masks": official["masks"],
                "time_ratio_ours_over_official": ours_s / official["seconds"],
            }
        )
        print(f"time ratio ours / official: {ours_s / official['seconds']:.3f} (target ≤ 0.2)")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
