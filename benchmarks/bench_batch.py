"""Batch throughput: planes per second labelling TIFF stacks, in one process with the encoder in fp32
("before") and in the precision ``auto`` picks ("after": bf16 where the CPU has bf16 matrix units), and a
dask LocalCluster of worker processes, on the same inputs in the same run.

    .venv/bin/python benchmarks/bench_batch.py [--files 2] [--planes 3] [--size 192] [--workers 2]
        [--no-cluster]

Prints a table, then one JSON line (``fast_path_speedup`` = auto ÷ fp32 planes/s in one process;
``speedup`` = cluster ÷ single-process planes/s, both in the auto precision).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=2)
    ap.add_argument("--planes", type=int, default=3)
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-cluster", action="store_true", help="skip the LocalCluster row")
    args = ap.parse_args(argv)

    import tifffile

    from napari_sam.batch.run import BatchConfig, DaskExecutor, LocalExecutor, run_batch
    from napari_sam.io.samples import nuclei_stack
    from napari_sam.models.device import resolve_precision

    tmp = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    try:
        src = tmp / "in"
        src.mkdir()
        stack, _ = nuclei_stack(args.planes)
        for f in range(args.files):
            r0 = 32 * f
            tifffile.imwrite(
                src / f"stack{f}.tif",
                stack[:, r0 : r0 + args.size, r0 : r0 + args.size],
                metadata={"axes": "ZYX"},
            )
        auto = resolve_precision("auto", "cpu")
        runs = [
            ("1 process, fp32 (before)", "fp32", lambda: LocalExecutor(1)),
            (f"1 process, auto={auto} (after)", "auto", lambda: LocalExecutor(1)),
        ]
        if not args.no_cluster:
            runs.append(
                (
                    f"LocalCluster {args.workers} workers, {auto}",
                    "auto",
                    lambda: DaskExecutor.local_cluster(args.workers),
                )
            )
        rows = []
        for k, (name, precision, make) in enumerate(runs):
            executor = make()
            try:
                report = run_batch(
                    [src],
                    BatchConfig(tmp / f"out{k}", device="cpu", precision=precision),
                    executor=executor,
                    progress=False,
                    log=lambda s: None,
                )
            finally:
                executor.close()
            if not report.ok:
                raise SystemExit(f"batch failed: {report.failed}")
            rows.append((name, report.planes, report.seconds, report.planes / report.seconds))
        print(f"{'run':<36}{'planes':>7}{'seconds':>9}{'planes/s':>10}")
        for name, n, sec, rate in rows:
            print(f"{name:<36}{n:>7}{sec:>9.1f}{rate:>10.3f}")
        result = {
            "bench": "batch",
            "files": args.files,
            "planes_per_file": args.planes,
            "size": args.size,
            "auto_precision": auto,
            "fp32_planes_per_s": rows[0][3],
            "single_planes_per_s": rows[1][3],
            "fast_path_speedup": rows[1][3] / rows[0][3],
        }
        if not args.no_cluster:
            result.update(
                cluster_planes_per_s=rows[2][3], workers=args.workers, speedup=rows[2][3] / rows[1][3]
            )
        print(json.dumps(result))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
