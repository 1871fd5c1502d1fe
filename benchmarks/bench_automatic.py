"""Automatic segmentation ("segment everything") on variants of the real stardist nuclei image.

The variants (built by :mod:`napari_sam.io.sample_variants`, where each one is documented) keep the
ground truth exactly known: ``original`` (the 512² fluorescence image), ``inverted`` (dark nuclei on
bright), ``he`` (H&E-like RGB, Beer–Lambert), ``down2`` / ``down4`` (block means, block-majority
labels), ``lowsnr`` (Poisson, object SNR 3), ``uneven`` (×0.3–×1 illumination field plus offset),
``mixed`` (the right 192 columns a 3× up-scaled crop: small and large nuclei side by side) and
``stack3d`` (a synthetic anisotropic (16, 128, 128) stack of ellipsoidal nuclei, z step 3× xy, with
known 3D labels).

Per variant and method: seconds, objects, F1 at IoU 0.5, precision and recall. Methods: ours
(``segment_everything`` / ``segment_stack`` with the default model LiteMedSAM and default settings),
the classical Otsu + distance-watershed baseline (scikit-image, on the gray image; in 3D on the volume),
and optionally ``--examples 5``: ours given 5 ground-truth objects as examples. ``--gt-boxes`` adds the
mean IoU of the model's answers to the ground-truth boxes (the zoom rule's quality, no proposals).
``--official`` runs the official SamAutomaticMaskGenerator once on the original (peers' venv; slow:
0 masks in 142 s with LiteMedSAM, see ../shared/peers/README.md).

    .venv/bin/python benchmarks/bench_automatic.py [--variants original,he] [--threads 2] [--json-out F]

Prints a table, then one JSON line.
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

ALL = ("original", "inverted", "he", "down2", "down4", "lowsnr", "uneven", "mixed", "stack3d")


def gt_box_miou(model, image: np.ndarray, truth: np.ndarray) -> float:
    """Mean IoU of the model's masks for the ground-truth boxes (pad 1), answered with the zoom rule and
    outlined as segment everything outlines its objects (:mod:`napari_sam.automatic.extents`).
    """
    from scipy import ndimage as ndi

    from napari_sam.automatic.box_mode import BoxModeParams, box_candidates, propose
    from napari_sam.automatic.extents import edge_derivatives, edge_extents
    from napari_sam.automatic.proposals import Proposals, label_boxes
    from napari_sam.embeddings.embedder import WindowEmbeddings
    from napari_sam.image.normalize import prepare_image

    prepared = prepare_image(image)
    boxes = label_boxes(truth)
    h, w = truth.shape
    boxes = np.clip(boxes + [-1, -1, 1, 1], 0, [h - 1, w - 1, h - 1, w - 1])
    ids = [i for i, s in enumerate(ndi.find_objects(truth), start=1) if s is not None]
    props = Proposals(boxes, np.full(len(boxes), "truth"), 0.0, 0.0)
    emb = WindowEmbeddings(model, prepared, capacity=64)
    params = BoxModeParams()
    cands, _ = box_candidates(model, prepared, emb, props, params)
    bright = propose(prepared, params).image  # the objects-bright image segment everything reads
    outlined = edge_extents(cands, edge_derivatives(bright)) if len(cands) else []
    ious = []
    for mask, (r, c), k in zip(outlined, cands.offsets, cands.prompt):
        full = np.zeros(truth.shape, bool)
        full[r : r + mask.shape[0], c : c + mask.shape[1]] = mask
        t = truth == ids[k]
        ious.append((full & t).sum() / max((full | t).sum(), 1))
    return float(np.mean(ious)) if ious else 0.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default=",".join(ALL), help=f"comma-separated subset of {ALL}")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--examples", type=int, default=0, help="also run ours with N ground-truth examples")
    ap.add_argument("--gt-boxes", action="store_true", help="also measure ground-truth-box mIoU")
    ap.add_argument("--official", action="store_true", help="run the official generator on the original")
    ap.add_argument("--points-per-side", type=int, default=32)
    ap.add_argument("--json-out", help="also write the JSON line to this file")
    args = ap.parse_args(argv)
    names = [v for v in args.variants.split(",") if v]
    bad = [v for v in names if v not in ALL]
    if bad:
        ap.error(f"unknown variants {bad}; choose from {ALL}")

    import torch

    from napari_sam.automatic import match_scores, segment_everything, segment_stack
    from napari_sam.automatic.proposals import otsu_watershed, to_gray
    from napari_sam.image.normalize import prepare_image
    from napari_sam.io.sample_variants import anisotropic_stack, variant
    from napari_sam.io.samples import NUCLEI_IMAGE, fetch_file, nuclei
    from napari_sam.models.loading import load_model

    torch.set_num_threads(args.threads)
    img0, truth0 = nuclei()
    model = load_model("lite_medsam", device="cpu")
    rows: list[dict] = []

    def record(var, method, seconds, labels, truth, extra=None):
        s = match_scores(labels, truth)
        row = {
            "variant": var,
            "method": method,
            "seconds": round(seconds, 2),
            "objects": int(len(np.unique(labels)) - 1),
            "truth": int(len(np.unique(truth)) - 1),
            "f1": round(s["f1"], 3),
            "precision": round(s["precision"], 3),
            "recall": round(s["recall"], 3),
        }
        row.update(extra or {})
        rows.append(row)
        print(
            f"{var:<10}{method:<18}{row['seconds']:>8.1f}{row['objects']:>8}{row['truth']:>7}"
            f"{row['f1']:>8.3f}{row['precision']:>7.3f}{row['recall']:>8.3f}  {row.get('note', '')}",
            flush=True,
        )

    print(
        f"{'variant':<10}{'method':<18}{'seconds':>8}{'objects':>8}{'truth':>7}{'F1@0.5':>8}{'prec':>7}{'recall':>8}"
    )
    for var in names:
        if var == "stack3d":
            stack, truth = anisotropic_stack()
            t0 = time.perf_counter()
            labels = segment_stack(stack, model=model)
            record(var, "ours", time.perf_counter() - t0, labels, truth)
            t0 = time.perf_counter()
            classical = otsu_watershed(stack.astype(np.float32))
            record(var, "otsu+watershed", time.perf_counter() - t0, classical, truth)
            continue
        image, truth = variant(var, img0, truth0)
        t0 = time.perf_counter()
        labels, info = segment_everything(image, model=model, return_info=True)
        extra = {k: info[k] for k in ("encoded_windows", "decoded", "polarity", "diameter") if k in info}
        extra["note"] = " ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in extra.items()
        )
        record(var, "ours", time.perf_counter() - t0, labels, truth, extra)
        t0 = time.perf_counter()
        prepared = prepare_image(image)
        gray = to_gray(prepared.region(0, image.shape[0], 0, image.shape[1]))
        classical = otsu_watershed(gray)
        record(var, "otsu+watershed", time.perf_counter() - t0, classical, truth)
        if args.examples:
            rng = np.random.default_rng(0)
            ids = rng.choice(np.unique(truth)[1:], size=args.examples, replace=False)
            ex = np.where(np.isin(truth, ids), truth, 0)
            t0 = time.perf_counter()
            labels = segment_everything(image, model=model, examples=ex)
            record(var, f"ours+{args.examples}examples", time.perf_counter() - t0, labels, truth)
        if args.gt_boxes:
            t0 = time.perf_counter()
            m = gt_box_miou(model, image, truth)
            rows.append({"variant": var, "method": "gt-box mIoU", "miou": round(m, 3)})
            print(f"{var:<10}{'gt-box mIoU':<18}{time.perf_counter() - t0:>8.1f}  mIoU={m:.3f}", flush=True)

    if args.official:
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
        record("original", "official AMG", official["seconds"], ref_labels, truth0)

    from _report import emit_json

    result = {"bench": "automatic", "model": "lite_medsam", "threads": args.threads, "rows": rows}
    emit_json(result, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
