"""The GPU path, checked and measured in one run (called by ``benchmarks/gpu_check.sh``).

    python benchmarks/gpu_check.py [--device cuda] [--dry-run] [--budget-s 450] [--json-out FILE]

Stages, in order, each timed and each allowed to fail on its own (the failure is recorded, the rest run):

1. ``goldens``: the golden files of ``tests/golden`` (peer outputs) reproduced on the device in fp32:
   LiteMedSAM embedding, box / point / combined prompts, the small ViT and TinyViT encoders.
2. ``encoder_lite``: LiteMedSAM 256² tiles per second, batched, in the model's precision (bf16 autocast
   where the device has bf16): the bare forward pass on device-resident inputs, and the whole pipeline
   from a chunked dask image (chunk-aligned reads, preprocessing, pinned staging, batched passes); on
   CUDA also the forward pass through ``torch.compile`` (``--no-compile`` skips it).
3. ``encoder_vit_b``: a random-weight SAM ViT-B at 1024², images per second, batched, bf16 autocast,
   eager and (on CUDA) compiled.
4. ``prompt``: latency of one box prompt → full-resolution mask on the nuclei (embedding cached).
5. ``automatic``: automatic mode (the model's own method) on the 512² nuclei: seconds and objects.
6. ``label_cli``: ``napari-sam label`` on a small stack (a subprocess, as a user runs it): planes/s.
7. ``finetune``: one minute of fine-tuning (``napari_sam.finetune``, default settings, the device's batch
   size and precision) on the nuclei's left half, then the held-out box mIoU of the right half, base vs
   fine-tuned, as ``bench_finetune.py`` measures it; training steps per second.

Prints one table, then one JSON line. ``--dry-run`` runs every stage on a small scale (few tiles, a
two-block ViT-B at 256², two planes) so that the script is exercised on a CPU; its numbers mean nothing.
Exit status 0 when every stage passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"
EMB_TOL, LOGIT_TOL, IOU_TOL, MASK_IOU = 2e-2, 5e-2, 2e-3, 0.995


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def timed(fn, dev: torch.device, repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``fn`` (after one warm-up), the device synchronised."""
    fn()
    sync(dev)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(dev)
        out.append(time.perf_counter() - t0)
    return out


# -- 1. goldens --------------------------------------------------------------------------------------
def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


def _logit_errors(ours: torch.Tensor, ref: np.ndarray) -> tuple[float, float]:
    o = ours.float().cpu().numpy()
    r = ref.astype(np.float32)
    fo, fr = o.reshape(-1, *o.shape[-2:]), r.reshape(-1, *r.shape[-2:])
    return float(np.abs(o - r).max()), min(_mask_iou(a, b) for a, b in zip(fo, fr))


def stage_goldens(dev: torch.device, args) -> dict:
    from napari_sam.models.loading import load_model
    from napari_sam.models.tiny_vit import TinyViTConfig, TinyViTImageEncoder
    from napari_sam.models.vit import ViTConfig, ViTImageEncoder

    checks: dict[str, dict] = {}
    ref = np.load(GOLDEN / "lite_medsam_nuclei.npz")
    net = load_model("lite_medsam", device=str(dev), precision="fp32").network
    t = lambda a: torch.from_numpy(np.asarray(a)).to(dev)  # noqa: E731
    with torch.inference_mode():
        emb = net.image_encoder(t(ref["input"]))
    checks["lite_medsam embedding"] = {
        "max_abs": float((emb.cpu() - torch.from_numpy(ref["embedding"].astype(np.float32))).abs().max()),
        "tol": EMB_TOL,
    }
    emb = t(ref["embedding"].astype(np.float32))
    logits, iou = net.decode(emb, boxes=t(ref["boxes_xyxy"]))
    checks["lite_medsam boxes"] = _decoded(logits, iou, ref["box_logits"], ref["box_iou"])
    xy = t(ref["points_xy"])[:, None, :]
    labels = torch.ones(len(xy), 1, dtype=torch.int64, device=dev)
    logits, iou = net.decode(emb, points=(xy, labels), multimask=True)
    checks["lite_medsam points"] = _decoded(
        logits, iou, ref["point_multimask_logits"], ref["point_multimask_iou"]
    )
    logits, iou = net.decode(
        emb,
        points=(t(ref["combo_points_xy"]), t(ref["combo_labels"]).long()),
        boxes=t(ref["boxes_xyxy"][:1]),
        mask_logits=t(ref["box_logits"][:1].astype(np.float32)),
    )
    checks["lite_medsam combo"] = _decoded(logits, iou, ref["combo_logits"], ref["combo_iou"])

    meta = json.loads((GOLDEN / "meta.json").read_text())
    c = meta["vit_tiny_config"]
    vit = ViTImageEncoder(ViTConfig(**{**c, "global_attn_indexes": tuple(c["global_attn_indexes"])}))
    checks["vit tiny embedding"] = _encoder_check(
        vit, GOLDEN / "sam_vit_tiny_random", lambda z: z["input"].astype(np.float32), dev
    )
    c = meta["tinyvit_small_config"]
    cfg = TinyViTConfig(
        img_size=c["img_size"],
        embed_dims=tuple(c["embed_dims"]),
        depths=tuple(c["depths"]),
        num_heads=tuple(c["num_heads"]),
        window_sizes=tuple(c["window_sizes"]),
        mlp_ratio=c["mlp_ratio"],
        mbconv_expand_ratio=c["mbconv_expand_ratio"],
        local_conv_size=c["local_conv_size"],
        stem="stride4",
    )
    checks["tinyvit embedding"] = _encoder_check(
        TinyViTImageEncoder(cfg),
        GOLDEN / "mobilesam_tinyvit_random",
        lambda z: (z["input_uint8"].astype(np.float32) / 255 - 0.5) / 0.25,
        dev,
        fold=True,
    )
    for r in checks.values():
        r.setdefault("ok", r["max_abs"] < r["tol"])
    failed = [name for name, r in checks.items() if not r["ok"]]
    return {
        "ok": not failed,
        "checks": checks,
        "failed": failed,
        "summary": f"{len(checks) - len(failed)}/{len(checks)} pass",
    }


def _decoded(logits, iou, ref_logits, ref_iou) -> dict:
    err, min_iou = _logit_errors(logits, ref_logits)
    iou_err = float(np.abs(iou.float().cpu().numpy() - ref_iou).max())
    return {
        "max_abs": err,
        "tol": LOGIT_TOL,
        "min_mask_iou": min_iou,
        "iou_pred_err": iou_err,
        "ok": err < LOGIT_TOL and min_iou >= MASK_IOU and iou_err < IOU_TOL,
    }


def _encoder_check(encoder, stem: Path, make_input, dev, fold: bool = False) -> dict:
    state = torch.load(stem.with_suffix(".pt"), weights_only=True)
    encoder.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True
    )
    encoder.eval().to(dev)
    if fold:  # after the move: the cached attention biases are plain tensors, made where the weights are
        encoder.prepare_for_inference()
    z = np.load(stem.with_suffix(".npz"))
    with torch.inference_mode():
        out = encoder(torch.from_numpy(make_input(z)).to(dev)).float().cpu()
    return {
        "max_abs": float((out - torch.from_numpy(z["embedding"].astype(np.float32))).abs().max()),
        "tol": EMB_TOL,
    }


# -- 2. LiteMedSAM tiles/s ---------------------------------------------------------------------------
def stage_encoder_lite(dev: torch.device, args) -> dict:
    import dask.array as da

    from napari_sam.embeddings.encoder import encode_batch, iter_encode
    from napari_sam.geometry.windows import Window
    from napari_sam.image.normalize import prepare_image
    from napari_sam.models.loading import load_model

    model = load_model("lite_medsam", device=str(dev), precision=args.precision)
    batch = 1 if args.dry_run else args.lite_batch
    x = torch.randn(batch, 3, 256, 256, device=dev)
    times = timed(lambda: encode_batch(model, x), dev, 1 if args.dry_run else 10)
    forward_tps = batch / statistics.median(times)
    compiled_tps = None
    if args.compile:
        fast = load_model("lite_medsam", device=str(dev), precision=args.precision, compile=True)
        compiled_tps = batch / statistics.median(
            timed(lambda: encode_batch(fast, x), dev, 1 if args.dry_run else 10)
        )

    # the whole pipeline: a chunked dask image, tiles read and preprocessed while the device computes
    rows, cols = (1, 2) if args.dry_run else (16, 16)  # tiles of 256² at full resolution
    rng = np.random.default_rng(0)
    raw = da.from_array(rng.integers(0, 4096, (256 * rows, 256 * cols), dtype=np.uint16), chunks=(1024, 1024))
    image = prepare_image(raw)
    windows = [Window(256 * r, 256 * c, 256) for r in range(rows) for c in range(cols)]
    t0 = time.perf_counter()
    n = sum(len(b) for b, _ in iter_encode(model, image, windows, batch_size=batch))
    sync(dev)
    pipeline_tps = n / (time.perf_counter() - t0)
    return {
        "ok": True,
        "precision": model.precision,
        "batch": batch,
        "forward_tiles_per_s": forward_tps,
        "compiled_tiles_per_s": compiled_tps,
        "pipeline_tiles_per_s": pipeline_tps,
        "pipeline_tiles": n,
        "summary": f"{forward_tps:.3g} tiles/s forward"
        + (f", {compiled_tps:.3g} compiled" if compiled_tps else "")
        + f", {pipeline_tps:.3g} tiles/s from dask ({model.precision}, batch {batch})",
    }


# -- 3. ViT-B 1024² images/s -------------------------------------------------------------------------
def stage_encoder_vit_b(dev: torch.device, args) -> dict:
    import dataclasses

    from napari_sam.embeddings.encoder import encode_batch
    from napari_sam.models.device import resolve_precision
    from napari_sam.models.loading import SamModel
    from napari_sam.models.registry import get_spec
    from napari_sam.models.sam import SamNetwork

    spec = get_spec("sam_vit_b")
    cfg = spec.encoder
    if args.dry_run:  # two blocks at 256²: the same code, a small fraction of the work
        cfg = dataclasses.replace(cfg, img_size=256, depth=2, global_attn_indexes=(1,))
    torch.manual_seed(0)
    net = SamNetwork(cfg).to(dev).prepare_for_inference()  # random weights: speed only
    precision = resolve_precision(args.precision, dev)
    model = SamModel(net, spec, dev, None, None, precision)
    batch = 1 if args.dry_run else args.vit_batch
    x = torch.randn(batch, 3, cfg.img_size, cfg.img_size, device=dev)
    times = timed(lambda: encode_batch(model, x), dev, 1 if args.dry_run else 8)
    ips = batch / statistics.median(times)
    compiled_ips = None
    if args.compile:
        model.compiled_encoder = torch.compile(net.image_encoder, dynamic=False)
        compiled_ips = batch / statistics.median(
            timed(lambda: encode_batch(model, x), dev, 1 if args.dry_run else 8)
        )
    return {
        "ok": True,
        "precision": precision,
        "batch": batch,
        "size": cfg.img_size,
        "depth": cfg.depth,
        "images_per_s": ips,
        "compiled_images_per_s": compiled_ips,
        "summary": f"{ips:.3g} images/s"
        + (f", {compiled_ips:.3g} compiled" if compiled_ips else "")
        + f" at {cfg.img_size}² ({precision}, batch {batch}, depth {cfg.depth})",
    }


# -- 4. prompt latency ---------------------------------------------------------------------------------
def _nuclei():
    from napari_sam.io.samples import nuclei

    return nuclei()


def stage_prompt(dev: torch.device, args) -> dict:
    from napari_sam.segmenter import Segmenter

    image, truth = _nuclei()
    seg = Segmenter("lite_medsam", device=str(dev), precision=args.precision, zoom=False)
    seg.set_image(image)
    box = (100, 100, 140, 150)
    times = timed(lambda: seg.predict(box=box).masks, dev, 3 if args.dry_run else 30)
    ms = 1000 * statistics.median(times)
    return {"ok": True, "median_ms": ms, "summary": f"{ms:.1f} ms a box → full-resolution mask"}


# -- 5. automatic mode ---------------------------------------------------------------------------------
def stage_automatic(dev: torch.device, args) -> dict:
    from napari_sam.automatic.everything import segment_everything
    from napari_sam.models.loading import load_model

    image, truth = _nuclei()
    if args.dry_run:  # a quarter of the image
        image, truth = image[:256, :256], truth[:256, :256]
    model = load_model("lite_medsam", device=str(dev), precision=args.precision)
    t0 = time.perf_counter()
    labels = segment_everything(image, model=model)
    sync(dev)
    sec = time.perf_counter() - t0
    objects = len(np.unique(labels)) - 1
    return {
        "ok": objects > 0,
        "seconds": sec,
        "objects": objects,
        "truth_objects": len(np.unique(truth)) - 1,
        "summary": f"{sec:.2f} s, {objects} objects (truth {len(np.unique(truth)) - 1})",
    }


# -- 6. napari-sam label -------------------------------------------------------------------------------
def stage_label_cli(dev: torch.device, args) -> dict:
    import tifffile

    from napari_sam.io.samples import nuclei_stack

    planes = 2 if args.dry_run else 8
    stack, _ = nuclei_stack(planes)
    if args.dry_run:
        stack = stack[:, :192, :192]
    try:  # reading a TIFF lazily goes through zarr; a machine carrying fewer wheels reads a .npy stack
        import zarr  # noqa: F401

        suffix = ".tif"
    except ImportError:
        suffix = ".npy"
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        src = Path(tmp) / f"stack{suffix}"
        if suffix == ".tif":
            tifffile.imwrite(src, stack, metadata={"axes": "ZYX"})
        else:
            np.save(src, stack)
        cmd = [sys.executable, "-m", "napari_sam._cli.main", "label", str(src), "-o", str(Path(tmp) / "out")]
        cmd += ["--device", str(dev), "--precision", args.precision, "--no-progress"]
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])
        )
        t0 = time.perf_counter()
        limit = args.stage_timeout or (1200.0 if args.dry_run else 180.0)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=limit)
        sec = time.perf_counter() - t0
        outputs = (
            sorted(p.name for p in (Path(tmp) / "out").glob("*")) if (Path(tmp) / "out").exists() else []
        )
    ok = proc.returncode == 0 and any(name.endswith((".tif", ".tiff", ".zarr")) for name in outputs)
    result = {
        "ok": ok,
        "seconds": sec,
        "planes": planes,
        "planes_per_s": planes / sec,
        "outputs": outputs,
        "input": suffix,
        "summary": f"{planes} planes ({suffix}) in {sec:.1f} s ({planes / sec:.2f} planes/s, "
        "process start included)",
    }
    if not ok:
        result["stderr_tail"] = (proc.stderr or proc.stdout)[-1500:]
    return result


# -- 7. fine-tuning -----------------------------------------------------------------------------------
def stage_finetune(dev: torch.device, args) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_finetune import halves, prompted_scores
    from napari_sam.finetune import finetune
    from napari_sam.models.loading import load_model

    image, truth = _nuclei()
    minutes, limit = 1.0, None
    if args.dry_run:  # a quarter of the image, 20 objects scored
        image, truth = image[:256, :256], truth[:256, :256]
        minutes, limit = 0.8, 20
    left, right = halves(truth)
    base = load_model("lite_medsam", device=str(dev), precision=args.precision)
    before = prompted_scores(base, image, right, limit)
    t0 = time.perf_counter()
    tuned = finetune(image, left, base=base, minutes=minutes, device=str(dev))
    sync(dev)
    train_s = time.perf_counter() - t0
    after = prompted_scores(tuned, image, right, limit)
    report = tuned.report
    steps = sum(phase["steps"] for phase in report["validation"]["phases"])
    training_s = report["time"]["training_s"]
    result = {
        "ok": steps > 0 and after["box_miou"] >= before["box_miou"] - 0.02,
        "seconds": train_s,
        "steps": steps,
        "steps_per_s": steps / max(training_s, 1e-9),
        "batch_size": report["parameters"]["batch_size"],
        "precision": report["parameters"]["precision"],
        "train_objects": report["data"]["train_objects"],
        "box_miou_before": before["box_miou"],
        "box_miou_after": after["box_miou"],
        "click_median_before": before["click_median_iou"],
        "click_median_after": after["click_median_iou"],
    }
    result["summary"] = (
        f"{minutes:g} min on {result['train_objects']} objects: {steps} steps "
        f"({result['steps_per_s']:.1f}/s, batch {result['batch_size']}, {result['precision']}); right half "
        f"box mIoU {before['box_miou']:.3f} → {after['box_miou']:.3f}"
    )
    return result


STAGES = {
    "goldens": stage_goldens,
    "encoder_lite": stage_encoder_lite,
    "encoder_vit_b": stage_encoder_vit_b,
    "prompt": stage_prompt,
    "automatic": stage_automatic,
    "label_cli": stage_label_cli,
    "finetune": stage_finetune,
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="torch device (default cuda)")
    ap.add_argument("--precision", default="auto", help="encoder precision: auto, fp32, bf16")
    ap.add_argument("--dry-run", action="store_true", help="every stage on a small scale (a CPU smoke run)")
    ap.add_argument("--lite-batch", type=int, default=64, help="LiteMedSAM tiles per forward pass")
    ap.add_argument("--vit-batch", type=int, default=32, help="ViT-B images per forward pass")
    ap.add_argument(
        "--no-compile", dest="compile", action="store_false", help="skip the torch.compile measurements"
    )
    ap.add_argument("--only", nargs="*", choices=list(STAGES), help="run only these stages")
    ap.add_argument("--budget-s", type=float, default=450.0, help="skip the stages left after this many s")
    ap.add_argument(
        "--stage-timeout",
        type=float,
        default=None,
        help="limit of the label subprocess, s (180; dry run 1200)",
    )
    ap.add_argument("--json-out", type=Path, help="also write the JSON line to this file")
    args = ap.parse_args(argv)

    from napari_sam.models.device import resolve_device

    try:
        dev = resolve_device(args.device)
    except ValueError as err:
        print(f"gpu_check: {err}. Run with --dry-run --device cpu for the CPU smoke run.", file=sys.stderr)
        return 2
    info = {"device": str(dev), "torch": torch.__version__, "dry_run": args.dry_run}
    args.compile = args.compile and dev.type == "cuda"  # inductor on a CPU compiles for minutes
    if dev.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(dev)
        torch.backends.cuda.matmul.allow_tf32 = False  # goldens are fp32; bf16 comes from autocast
    start = time.perf_counter()
    results: dict[str, dict] = {}
    for name in args.only or list(STAGES):
        if time.perf_counter() - start > args.budget_s:
            results[name] = {"ok": False, "skipped": True, "summary": "skipped: time budget spent"}
            continue
        t0 = time.perf_counter()
        try:
            results[name] = STAGES[name](dev, args)
        except Exception as err:  # one stage's failure must not hide the others' numbers
            results[name] = {
                "ok": False,
                "error": f"{type(err).__name__}: {err}",
                "summary": f"FAILED: {err}",
            }
            traceback.print_exc()
        results[name]["stage_s"] = time.perf_counter() - t0
        print(f"[{time.perf_counter() - start:6.1f} s] {name}: {results[name]['summary']}", flush=True)

    print()
    title = f"GPU check on {info.get('gpu', str(dev))}" + (
        "  (DRY RUN: numbers mean nothing)" if args.dry_run else ""
    )
    print(title)
    print(f"{'stage':<16}{'ok':<6}{'seconds':>8}  result")
    for name, r in results.items():
        print(f"{name:<16}{'yes' if r['ok'] else 'NO':<6}{r.get('stage_s', 0):>8.1f}  {r['summary']}")
    line = json.dumps(
        {"benchmark": "gpu_check", **info, "ok": all(r["ok"] for r in results.values()), "results": results}
    )
    print(line)
    if args.json_out:
        args.json_out.write_text(line + "\n")
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
