"""Batch throughput: planes per second labelling TIFF stacks, one process (local thread) versus a dask
LocalCluster of worker processes, on the same inputs in the same run.

    .venv/bin/python benchmarks/bench_batch.py [--files 2] [--planes 3] [--size 192] [--workers 2]

Prints a table, then one JSON line (``speedup`` = cluster planes/s ÷ single-process planes/s).
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
    args = ap.parse_args(argv)

    import tifffile

    from napari_sam.batch.run import BatchConfig, DaskExecutor, LocalExecutor, run_batch
    from napari_sam.io.samples import nuclei_stack

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
        rows = []
        for name, make in (
            ("1 process (local thread)", lambda: LocalExecutor(1)),
            (f"LocalCluster {args.workers} workers", lambda: DaskExecutor.local_cluster(args.workers)),
        ):
            executor = make()
            try:
                report = run_batch(
                    [src],
                    BatchConfig(tmp / name.split()[0], device="cpu"),
                    executor=executor,
                    progress=False,
                    log=lambda s: None,
                )
            finally:
                executor.close()
            if not report.ok:
                raise SystemExit(f"batch failed: {report.failed}")
            rows.append((name, report.planes, report.seconds, report.planes / report.seconds))
        print(f"{'executor':<30}{'planes':>7}{'seconds':>9}{'planes/s':>10}")
        for name, n, sec, rate in rows:
            print(f"{name:<30}{n:>7}{sec:>9.1f}{rate:>10.3f}")
        result = {
            "bench": "batch",
            "files": args.files,
            "planes_per_file": args.planes,
            "size": args.size,
            "single_planes_per_s": rows[0][3],
            "cluster_planes_per_s": rows[1][3],
            "workers": args.workers,
            "speedup": rows[1][3] / rows[0][3],
        }
        print(json.dumps(result))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
