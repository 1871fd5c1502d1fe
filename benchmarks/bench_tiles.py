"""Tiled embeddings: throughput against the bare encoder, peak memory for growing images, cache reopen
and resume after an interruption.

    .venv/bin/python benchmarks/bench_tiles.py                 # defaults: 768² throughput, 1024²–4096² memory
    .venv/bin/python benchmarks/bench_tiles.py --sizes 1024 2048 4096 8192 --memory-tiles 8

Prints a table and, last, one JSON line. Every figure is measured in this run; the memory of each size
is the peak resident set (``resource.getrusage``) of a fresh subprocess that opens a lazily read tiled
BigTIFF, computes scaling and fingerprint over the whole image, creates the cache for all its tiles and
encodes the first ``--memory-tiles`` tiles (``0`` = all), next to a subprocess that only loads the model.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODEL = "lite_medsam"


def write_tiff(path: Path, size: int, tile: int = 256, seed: int = 0) -> None:
    """A size×size uint16 tiled BigTIFF of nuclei-like blobs, written tile by tile (never whole)."""
    import tifffile

    from napari_sam.io.samples import blobs

    rng = np.random.default_rng(seed)

    def tiles():
        for _ in range(0, size, tile):
            for _ in range(0, size, tile):
                n = int(rng.integers(2, 6))
                centres = rng.uniform(20, tile - 20, (n, 2))
                img, _ = blobs((tile, tile), centres, rng.uniform(6, 14, n), seed=int(rng.integers(1 << 30)))
                yield img

    tifffile.imwrite(
        path,
        tiles(),
        shape=(size, size),
        dtype=np.uint16,
        tile=(tile, tile),
        bigtiff=True,
        compression="zlib",
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def vm_hwm_mb() -> float | None:
    """Linux's own high-water mark of this process (not inherited from the parent, unlike ru_maxrss)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


# -- child processes --------------------------------------------------------------------------------
def child_memory(args: argparse.Namespace) -> None:
    from napari_sam.embeddings.embedder import Cancelled
    from napari_sam.io.images import read_image
    from napari_sam.segmenter import Segmenter

    seg = Segmenter(MODEL, device="cpu")
    out = {"size": args.child_size, "model_only": args.child_tiff is None}
    if args.child_bare:  # the encoder alone on one batch of random inputs: its own activation memory
        import torch

        with torch.inference_mode():
            seg.model.network.image_encoder(
                torch.randn(args.batch_size, 3, seg.model.input_size, seg.model.input_size)
            )
    elif args.child_tiff is not None:
        done = []
        t0 = time.perf_counter()
        try:
            seg.set_image(
                read_image(args.child_tiff),
                cache=args.child_cache,
                tile_size=args.tile_size,
                progress=lambda d, t: done.append(d),
                should_stop=(lambda: bool(done) and done[-1] >= args.memory_tiles)
                if args.memory_tiles
                else None,
            )
        except Cancelled:
            pass
        out.update(
            tiles_total=len(seg.grid),
            tiles_encoded=seg.embeddings.encoded_count,
            seconds=time.perf_counter() - t0,
        )
    out["peak_rss_mb"] = peak_rss_mb()
    out["vm_hwm_mb"] = vm_hwm_mb()
    print(json.dumps(out))


def run_child(extra: list[str]) -> dict:
    cmd = [sys.executable, __file__, *extra]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


# -- measurements in this process -----------------------------------------------------------------
def bare_encoder_seconds(model, image_path: Path, tile_size: int | None, batch: int) -> tuple[float, int]:
    """The encoder alone on the same tiles (inputs prepared beforehand, outside the clock)."""
    import torch

    from napari_sam.embeddings.encoder import batch_inputs
    from napari_sam.geometry.tiling import TileGrid
    from napari_sam.image.planes import make_source
    from napari_sam.io.images import read_image

    src = make_source(read_image(image_path).compute())
    grid = TileGrid.for_image(src.plane_shape, model.input_size, tile_size)
    image = src.plane(0)
    inputs = [batch_inputs(image, grid.tiles[i : i + batch], model.spec) for i in range(0, len(grid), batch)]
    t0 = time.perf_counter()
    with torch.inference_mode():
        for x in inputs:
            model.network.image_encoder(x.to(model.device)).float().cpu()
    return time.perf_counter() - t0, len(grid)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--throughput-size", type=int, default=768, help="image side for throughput/reopen/resume")
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096], help="image sides for memory")
    p.add_argument("--memory-tiles", type=int, default=8, help="tiles encoded per memory run (0 = all)")
    p.add_argument("--tile-size", type=int, default=None, help="tile side (default: the model input, 256)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--workdir", default=None)
    p.add_argument("--child-size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--child-tiff", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-cache", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-write", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-bare", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child_write is not None:
        write_tiff(Path(args.child_write), args.child_size, seed=args.child_size)
        return
    if args.child_size is not None:
        child_memory(args)
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-tiles-"))
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"batch_size": args.batch_size}

    # 1. peak memory for growing sizes, each in a fresh process started while this one is still small
    # (a child's ru_maxrss starts from its parent's at fork: measure before loading anything here)
    base = run_child(["--child-size", "0"])
    bare_mem = run_child(["--child-size", "0", "--child-bare", "--batch-size", str(args.batch_size)])
    rows = []
    for size in args.sizes:
        path = work / f"mem{size}.tif"
        if not path.exists():
            subprocess.run(
                [sys.executable, __file__, "--child-size", str(size), "--child-write", str(path)], check=True
            )
        extra = [
            "--child-size",
            str(size),
            "--child-tiff",
            str(path),
            "--child-cache",
            str(work / f"mem{size}.zarr"),
            "--memory-tiles",
            str(args.memory_tiles),
        ]
        if args.tile_size:
            extra += ["--tile-size", str(args.tile_size)]
        rows.append(run_child(extra))
    result["memory"] = {
        "model_only_peak_rss_mb": round(base["peak_rss_mb"], 1),
        "model_only_vm_hwm_mb": base["vm_hwm_mb"] and round(base["vm_hwm_mb"], 1),
        "bare_encoder_batch_peak_rss_mb": round(bare_mem["peak_rss_mb"], 1),
        "tiles_encoded_per_size": args.memory_tiles or "all",
        "sizes": [
            {
                "image": r["size"],
                "image_mb": round(r["size"] ** 2 * 2 / 2**20, 1),
                "tiles_total": r["tiles_total"],
                "tiles_encoded": r["tiles_encoded"],
                "seconds": round(r["seconds"], 1),
                "peak_rss_mb": round(r["peak_rss_mb"], 1),
                "vm_hwm_mb": r["vm_hwm_mb"] and round(r["vm_hwm_mb"], 1),
            }
            for r in rows
        ],
    }

    import torch

    from napari_sam.embeddings.embedder import Cancelled
    from napari_sam.io.images import read_image
    from napari_sam.models.loading import load_model
    from napari_sam.segmenter import Segmenter

    model = load_model(MODEL, device="cpu")
    result.update(model=MODEL, device=str(model.device), torch_threads=torch.get_num_threads())

    # 1. throughput: pipeline vs bare encoder on the same tiles (bare measured before and after)
    n = args.throughput_size
    tif = work / f"img{n}.tif"
    write_tiff(tif, n)
    bare1, tiles = bare_encoder_seconds(model, tif, args.tile_size, args.batch_size)
    seg = Segmenter(model, batch_size=args.batch_size)
    cache = work / f"img{n}.zarr"
    t0 = time.perf_counter()
    seg.set_image(read_image(tif), cache=cache, tile_size=args.tile_size)
    pipeline = time.perf_counter() - t0
    bare2, _ = bare_encoder_seconds(model, tif, args.tile_size, args.batch_size)
    bare = (bare1 + bare2) / 2
    result["throughput"] = {
        "image": n,
        "tiles": tiles,
        "bare_s": round(bare, 2),
        "bare_runs_s": [round(bare1, 2), round(bare2, 2)],
        "pipeline_s": round(pipeline, 2),
        "bare_tiles_per_s": round(tiles / bare, 3),
        "pipeline_tiles_per_s": round(tiles / pipeline, 3),
        "overhead_pct": round(100 * (pipeline / bare - 1), 1),
    }

    # 2. reopen a finished cache: no encoder
    t0 = time.perf_counter()
    again = Segmenter(model, batch_size=args.batch_size)
    again.set_image(read_image(tif), cache=cache, tile_size=args.tile_size)
    result["reopen"] = {
        "seconds": round(time.perf_counter() - t0, 3),
        "status": again.store.status,
        "tiles_encoded": again.embeddings.encoded_count,
    }

    # 3. resume: interrupt after half the tiles, then reopen
    cache2 = work / f"img{n}-resume.zarr"
    done: list[int] = []
    first = Segmenter(model, batch_size=args.batch_size)
    t0 = time.perf_counter()
    try:
        first.set_image(
            read_image(tif),
            cache=cache2,
            tile_size=args.tile_size,
            progress=lambda d, t: done.append(d),
            should_stop=lambda: bool(done) and done[-1] >= tiles // 2,
        )
    except Cancelled:
        pass
    t_first = time.perf_counter() - t0
    second = Segmenter(model, batch_size=args.batch_size)
    t0 = time.perf_counter()
    second.set_image(read_image(tif), cache=cache2, tile_size=args.tile_size)
    result["resume"] = {
        "tiles": tiles,
        "before_interrupt": first.embeddings.encoded_count,
        "after_resume": second.embeddings.encoded_count,
        "status": second.store.status,
        "first_s": round(t_first, 2),
        "resume_s": round(time.perf_counter() - t0, 2),
    }

    # table
    t = result["throughput"]
    print(f"model {MODEL} on {result['device']} ({result['torch_threads']} threads), batch {args.batch_size}")
    print(f"\nthroughput  {n}² image, {tiles} tiles")
    print(
        f"  bare encoder   {t['bare_s']:>8.2f} s  {t['bare_tiles_per_s']:>7.3f} tiles/s"
        f"   (runs {t['bare_runs_s']})"
    )
    print(
        f"  pipeline       {t['pipeline_s']:>8.2f} s  {t['pipeline_tiles_per_s']:>7.3f} tiles/s   "
        f"overhead {t['overhead_pct']:+.1f} %  (read, scale, fingerprint, encode, write, flags)"
    )
    r = result["reopen"]
    print(
        f"\nreopen finished cache   {r['seconds']:.3f} s, status {r['status']},"
        f" {r['tiles_encoded']} tiles encoded"
    )
    r = result["resume"]
    print(
        f"resume                  {r['before_interrupt']} tiles, interrupted; reopened ({r['status']}): "
        f"{r['after_resume']} more encoded (of {r['tiles']})"
    )
    m = result["memory"]
    print(
        f"\npeak RSS (fresh process each; model only: {m['model_only_peak_rss_mb']} MB, "
        f"VmHWM {m['model_only_vm_hwm_mb']} MB; model + one bare encoder batch of {args.batch_size}: "
        f"{m['bare_encoder_batch_peak_rss_mb']} MB)"
    )
    print(f"  {'image':>7} {'MB':>7} {'tiles':>7} {'encoded':>8} {'s':>7} {'peak MB':>8} {'VmHWM MB':>9}")
    for s in m["sizes"]:
        print(
            f"  {s['image']:>6}² {s['image_mb']:>7} {s['tiles_total']:>7} {s['tiles_encoded']:>8}"
            f" {s['seconds']:>7} "
            f"{s['peak_rss_mb']:>8} {s['vm_hwm_mb']:>9}"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
