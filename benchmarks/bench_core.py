"""Core benchmark: encoder, prompt → full-resolution mask, a batch of 16 boxes, peak memory; ours beside
the peer reference (LiteMedSAM in the official segment-anything wrapper), measured in the same run.

    python benchmarks/bench_core.py [--repeats 7] [--threads 2]

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


def peak_rss_mb(which: str, threads: int) -> float:
    code = MEMORY_SNIPPETS[which].format(golden=GOLDEN, bench=Path(__file__).parent)
    code = f"import torch; torch.set_num_threads({threads})\n" + PEAK + code
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return int(out.strip().splitlines()[-1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from napari_sam.models.loading import load_model
    from napari_sam.segmenter import Segmenter

    ref = reference_module().lite_medsam_as_sam()
    ours = load_model("lite_medsam", device="cpu")
    golden = np.load(GOLDEN)
    x = torch.from_numpy(golden["input"])
    results: dict[str, dict] = {}

    with torch.inference_mode():
        results["encoder (1×3×256×256)"] = paired(
            lambda: ref.image_encoder(x), lambda: ours.network.image_encoder(x), args.repeats
        )
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

    mem = {"ours": peak_rss_mb("ours", args.threads), "reference": peak_rss_mb("reference", args.threads)}
    results["peak RSS, encode + 16 boxes (MB)"] = {
        "reference_s": mem["reference"],
        "ours_s": mem["ours"],
        "ratio": mem["ours"] / mem["reference"],
    }

    print(f"{'measure':<36}{'reference':>12}{'ours':>12}{'ours/ref':>10}")
    for name, r in results.items():
        unit = "" if "MB" in name else " s"
        print(f"{name:<36}{r['reference_s']:>10.3f}{unit:2}{r['ours_s']:>10.3f}{unit:2}{r['ratio']:>10.2f}")
    print(f"embedding max |ours - golden| = {max_emb_diff:.2e} (tolerance 2e-2)")
    print(
        json.dumps(
            {
                "benchmark": "core",
                "threads": args.threads,
                "repeats": args.repeats,
                "results": results,
                "embedding_max_abs_diff": max_emb_diff,
            }
        )
    )


if __name__ == "__main__":
    main()
