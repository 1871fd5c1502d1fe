"""Core benchmark: encoder, prompt → full-resolution mask, a batch of 16 boxes, peak memory; ours beside
the peer reference (LiteMedSAM in the official segment-anything wrapper), measured in the same run.

    python benchmarks/bench_core.py [--repeats 7] [--threads 2] [--no-openvino] [--no-compile]

The encoder is measured in fp32 and, where the CPU has bf16 matrix units (AMX, AVX-512 BF16), in bf16;
beside them an OpenVINO bf16 export of the reference encoder (``pip install openvino``), the anchor a
user comfortable with OpenVINO would pick; ours through OpenVINO (``backend="openvino"``, what
``backend="auto"`` runs on such CPUs; the first pass, an export or a read of the cached one, is noted);
and ``load_model(compile=True)``, the encoder compiled with
its weights frozen in (:mod:`napari_sam.models.cpu_compile`; the compile time is noted). On a CPU
without bf16 units the bf16 row is skipped (``precision='bf16'`` is refused there) and OpenVINO
reports the precision it actually ran in.

The row "freed memory kept / system malloc" is ours in fresh processes with and without
:mod:`napari_sam.models.host_memory` (its "reference" column is the system's malloc): that setting is
process-wide, so the in-process pairs share it with the reference.

Timings alternate reference and ours call by call, so a noisy machine slows both alike; the ratio
(ours / reference) is the median of the per-pair ratios. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _peers import REPO, reference_module  # noqa: E402

GOLDEN = REPO / "tests" / "golden" / "lite_medsam_nuclei.npz"
ANCHOR = "encoder OpenVINO export of ref"


def paired(ref_fn, our_fn, repeats: int) -> dict:
    ref_fn(), our_fn()  # warm-up
    ref_t, our_t = [], []
    for _ in range(repeats):
        for fn, acc in ((ref_fn, ref_t), (our_fn, our_t)):
            t0 = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t0)
    ratios = [o / r for o, r in zip(our_t, ref_t)]
    return {
        "reference_s": statistics.median(ref_t),
        "ours_s": statistics.median(our_t),
        "ratio": statistics.median(ratios),
    }


# VmHWM is the child's own high-water mark (ru_maxrss would carry the parent's over fork + exec).
PEAK = (
    "def peak_kb():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            return int(line.split()[1])\n"
)
MEMORY_SNIPPETS = {
    "ours": (
        "import resource, torch, numpy as np\n"
        "from napari_sam.models.loading import load_model\n"
        "from napari_sam.segmenter import Segmenter\n"
        "seg = Segmenter(load_model('lite_medsam', device='cpu'), zoom=False)\n"
        "seg.set_image(np.load('{golden}')['input'][0, 0])\n"
        "seg.predict(box=[(10 + i, 10, 60 + i, 70) for i in range(16)])\n"
        "print(peak_kb())\n"
    ),
    "reference": (
        "import resource, sys, torch, numpy as np\n"
        "sys.path.insert(0, '{bench}')\n"
        "from _peers import reference_module\n"
        "sam = reference_module().lite_medsam_as_sam()\n"
        "from segment_anything import SamPredictor\n"
        "p = SamPredictor(sam)\n"
        "img = (np.load('{golden}')['input'][0].transpose(1, 2, 0) * 255).astype(np.uint8)\n"
        "p.set_image(img)\n"
        "p.predict_torch(None, None, torch.tensor([[10. + i, 10, 60 + i, 70] for i in range(16)])[:, None], "
        "multimask_output=False)\n"
        "print(peak_kb())\n"
    ),
}


def openvino_encoder(torch_encoder, x: torch.Tensor, threads: int):
    """The encoder exported to OpenVINO and compiled for the CPU with a bf16 inference-precision hint.

    Returns (callable on a numpy input, the precision OpenVINO runs in), or (None, reason) when OpenVINO
    is not installed or the export fails.
    """
    try:
        import openvino as ov
    except ImportError:
        return None, "openvino not installed (pip install openvino)"
    try:
        core = ov.Core()
        with torch.inference_mode():
            model = ov.convert_model(torch_encoder, example_input=x)
        compiled = core.compile_model(
            model,
            "CPU",
            {"INFERENCE_PRECISION_HINT": "bf16", "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1},
        )
        hint = compiled.get_property(
            "INFERENCE_PRECISION_HINT"
        )  # what OpenVINO runs in (f32 without bf16 units)
        ran_in = f"bf16 asked, runs in {getattr(hint, 'get_type_name', lambda: str(hint))()}"
    except Exception as err:  # an export that fails is reported, not fatal
        return None, f"OpenVINO export failed: {type(err).__name__}: {str(err)[:200]}"
    request = compiled.create_infer_request()
    xn = x.numpy()
    return (lambda: request.infer({0: xn})), ran_in


# The C library's malloc setting (napari_sam.models.host_memory) is process-wide and applied when a CPU
# model loads, so the in-process pairs above share it with the reference; its own effect is measured
# between fresh processes, with it and without it (NAPARI_SAM_MALLOC=system), alternating.
ALLOCATOR_SNIPPET = (
    "import json, statistics, threading, time, torch\n"
    "torch.set_num_threads({threads})\n"
    "from napari_sam.models.host_memory import keep_freed_memory\n"
    "from napari_sam.models.loading import load_model\n"
    "model = load_model('lite_medsam', device='cpu', precision='fp32')\n"
    "x = torch.randn(1, 3, 256, 256)\n"
    "times = []\n"
    "def passes():\n"
    "    with torch.inference_mode():\n"
    "        for _ in range({passes}):\n"
    "            t = time.perf_counter()\n"
    "            model.network.image_encoder(x)\n"
    "            times.append(time.perf_counter() - t)\n"
    "worker = threading.Thread(target=passes)\n"
    "worker.start()\n"
    "worker.join()\n"
    "print(json.dumps({{'setting': keep_freed_memory(), 'first': times[0],\n"
    "                  'median': statistics.median(times[1:])}}))\n"
)


def allocator_effect(threads: int, rounds: int = 3, passes: int = 7) -> dict:
    """Encoder seconds per 256² pass in a worker thread, malloc keeping freed memory vs the system's
    settings, in fresh processes (``rounds`` of each, alternating): the first pass and the median of the
    others; ``ratio`` is the median of the per-round ratios of those medians.
    """
    import os

    code = ALLOCATOR_SNIPPET.format(threads=threads, passes=passes)
    runs: dict[str, list[dict]] = {"kept": [], "system": []}
    for _ in range(rounds):
        for which, setting in (("kept", ""), ("system", "system")):
            env = {k: v for k, v in os.environ.items() if k != "NAPARI_SAM_MALLOC"}
            out = subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                check=True,
                env={**env, "NAPARI_SAM_MALLOC": setting},
            ).stdout
            runs[which].append(json.loads(out.strip().splitlines()[-1]))
    return {
        "reference_s": statistics.median(r["median"] for r in runs["system"]),
        "ours_s": statistics.median(r["median"] for r in runs["kept"]),
        "ratio": statistics.median(k["median"] / s["median"] for k, s in zip(runs["kept"], runs["system"])),
        "first_pass_system_s": statistics.median(r["first"] for r in runs["system"]),
        "first_pass_kept_s": statistics.median(r["first"] for r in runs["kept"]),
        "settings": sorted({r["setting"] for r in runs["kept"] + runs["system"]}),
    }


def peak_rss_mb(which: str, threads: int) -> float:
    code = MEMORY_SNIPPETS[which].format(golden=GOLDEN, bench=Path(__file__).parent)
    code = f"import torch; torch.set_num_threads({threads})\n" + PEAK + code
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return int(out.strip().splitlines()[-1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-openvino", action="store_true", help="skip the OpenVINO bf16 reference column")
    ap.add_argument(
        "--no-compile", action="store_true", help="skip the compiled encoder (load_model(compile=True))"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from napari_sam.embeddings.encoder import encode_batch
    from napari_sam.models.device import bf16_support
    from napari_sam.models.loading import load_model
    from napari_sam.models.openvino_encoder import openvino_available
    from napari_sam.segmenter import Segmenter

    ref = reference_module().lite_medsam_as_sam()
    ours = load_model("lite_medsam", device="cpu", precision="fp32", backend="torch")
    golden = np.load(GOLDEN)
    x = torch.from_numpy(golden["input"])
    results: dict[str, dict] = {}
    notes: dict[str, str] = {}

    with torch.inference_mode():
        results["encoder fp32 (1×3×256×256)"] = paired(
            lambda: ref.image_encoder(x), lambda: encode_batch(ours, x), args.repeats
        )
        has_bf16, why = bf16_support("cpu")
        notes["cpu bf16"] = why
        if has_bf16:
            ours_bf16 = load_model("lite_medsam", device="cpu", precision="bf16", backend="torch")
            results["encoder bf16 (ours, torch)"] = paired(
                lambda: ref.image_encoder(x), lambda: encode_batch(ours_bf16, x), args.repeats
            )
        if not args.no_openvino and openvino_available()[0]:
            # what backend="auto" runs where the CPU has bf16 units (fp32 where it has not)
            ours_ov = load_model("lite_medsam", device="cpu", backend="openvino")
            t0 = time.perf_counter()
            encode_batch(ours_ov, x)
            notes["OpenVINO (ours), first pass"] = f"{time.perf_counter() - t0:.1f} s (export or cache)"
            results[f"encoder {ours_ov.precision} OpenVINO (ours)"] = paired(
                lambda: ref.image_encoder(x), lambda: encode_batch(ours_ov, x), args.repeats
            )
        if not args.no_compile:
            # load_model(compile=True): the weight-frozen compiled copy, in bf16 where the CPU has it
            ours_compiled = load_model("lite_medsam", device="cpu", compile=True)
            t0 = time.perf_counter()
            encode_batch(ours_compiled, x)
            notes["compile (first pass)"] = f"{time.perf_counter() - t0:.1f} s"
            name = f"encoder {ours_compiled.precision} compiled (ours)"
            results[name] = paired(
                lambda: ref.image_encoder(x), lambda: encode_batch(ours_compiled, x), args.repeats
            )
        ov_fn, ov_note = (
            (None, "skipped (--no-openvino)")
            if args.no_openvino
            else openvino_encoder(ref.image_encoder, x, args.threads)
        )
        notes["openvino"] = ov_note
        if ov_fn is not None:
            results[ANCHOR] = paired(lambda: ref.image_encoder(x), ov_fn, args.repeats)
        emb_ref = ref.image_encoder(x)
        pe = ref.prompt_encoder.get_dense_pe()

        def ref_decode(boxes):
            sp, de = ref.prompt_encoder(points=None, boxes=boxes, masks=None)
            return ref.mask_decoder(
                image_embeddings=emb_ref,
                image_pe=pe,
                sparse_prompt_embeddings=sp,
                dense_prompt_embeddings=de,
                multimask_output=False,
            )

        # Ours: the whole public path on the cached embedding, ending in a full-resolution (256²) bool mask.
        seg = Segmenter(ours, zoom=False)
        seg.set_image(golden["input"][0, 0])
        box1 = torch.tensor([[[60.0, 60.0, 120.0, 110.0]]])
        box16 = box1.repeat(16, 1, 1) + torch.arange(16.0)[:, None, None]
        rc1 = [(60.0, 60.0, 110.0, 120.0)]
        rc16 = [(60.0 + i, 60.0 + i, 110.0 + i, 120.0 + i) for i in range(16)]
        results["prompt → mask, 1 box"] = paired(
            lambda: ref_decode(box1), lambda: seg.predict(box=rc1).masks, args.repeats
        )
        results["prompt → masks, 16 boxes"] = paired(
            lambda: ref_decode(box16), lambda: seg.predict(box=rc16).masks, max(3, args.repeats // 2)
        )
        emb_ours = ours.network.image_encoder(x)
        max_emb_diff = float(
            (emb_ours - torch.from_numpy(golden["embedding"].astype(np.float32))).abs().max()
        )

    alloc = results["encoder: freed memory kept / system malloc"] = allocator_effect(args.threads)
    notes["encoder first pass of a process (system malloc → kept)"] = (
        f"{alloc['first_pass_system_s']:.3f} s → {alloc['first_pass_kept_s']:.3f} s"
    )
    mem = {"ours": peak_rss_mb("ours", args.threads), "reference": peak_rss_mb("reference", args.threads)}
    results["peak RSS, encode + 16 boxes (MB)"] = {
        "reference_s": mem["reference"],
        "ours_s": mem["ours"],
        "ratio": mem["ours"] / mem["reference"],
    }

    print(f"{'measure':<46}{'reference':>12}{'ours':>12}{'ours/ref':>10}")
    for name, r in results.items():
        unit = "" if "MB" in name else " s"
        print(f"{name:<46}{r['reference_s']:>10.3f}{unit:2}{r['ours_s']:>10.3f}{unit:2}{r['ratio']:>10.2f}")
    print(f"embedding max |ours - golden| = {max_emb_diff:.2e} (tolerance 2e-2)")
    for name, note in notes.items():
        print(f"{name}: {note}")
    anchor = results.get(ANCHOR)
    if anchor is not None:
        for k in results:
            if k.startswith("encoder") and k != ANCHOR and "malloc" not in k:
                notes[f"{k} / OpenVINO anchor"] = f"{results[k]['ratio'] / anchor['ratio']:.2f}"
                print(f"{k} ÷ OpenVINO anchor: {results[k]['ratio'] / anchor['ratio']:.2f}")
    print(
        json.dumps(
            {
                "benchmark": "core",
                "threads": args.threads,
                "repeats": args.repeats,
                "results": results,
                "embedding_max_abs_diff": max_emb_diff,
                "notes": notes,
            }
        )
    )


if __name__ == "__main__":
    main()
