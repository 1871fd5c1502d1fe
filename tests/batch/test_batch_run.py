"""Batch planning, and scale-out on a real dask.distributed LocalCluster with a worker killed mid-run."""

import json
import os
import signal
import threading

import numpy as np
import pytest
import tifffile

from napari_sam.batch.run import BatchConfig, DaskExecutor, expand_inputs, interpret_axes, plan, run_batch
from napari_sam.io.labels import read_labels
from napari_sam.io.samples import blobs


def test_interpret_axes():
    assert interpret_axes((64, 64)) == (False, None)
    assert interpret_axes((64, 64, 3)) == (False, None)
    assert interpret_axes((5, 64, 64)) == (True, None)
    assert interpret_axes((5, 64, 64, 3)) == (True, None)
    with pytest.raises(ValueError, match="unsupported dimensions"):
        interpret_axes((2, 3, 64, 64))
    with pytest.raises(ValueError, match="empty"):
        interpret_axes((0, 64))


def test_plan_reports_bad_files_and_name_clashes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    tifffile.imwrite(tmp_path / "a" / "x.tif", np.arange(256, dtype=np.uint8).reshape(16, 16))
    tifffile.imwrite(tmp_path / "b" / "x.tif", np.arange(256, dtype=np.uint8).reshape(16, 16))
    (tmp_path / "a" / "y.tif").write_bytes(b"not a tiff")
    tifffile.imwrite(tmp_path / "a" / "z.tif", np.zeros((16, 16), np.uint8))
    cfg = BatchConfig(tmp_path / "out")
    jobs = plan([tmp_path / "a"], cfg)
    assert [j.error is None for j in jobs] == [True, False, False]
    assert "y.tif" in jobs[1].input and "not a readable TIFF" in jobs[1].error
    assert "constant" in jobs[2].error
    with pytest.raises(ValueError, match="both write"):
        plan([tmp_path / "a" / "x.tif", tmp_path / "b" / "x.tif"], cfg)
    assert len(expand_inputs([str(tmp_path / "*" / "x.tif")])) == 2


def _write_planes(folder, files=2, planes=2):
    folder.mkdir()
    for f in range(files):
        stack = np.stack(
            [
                blobs((96, 96), [(30, 30 + 5 * f), (62, 64)], [10, 12], seed=10 * f + z)[0]
                for z in range(planes)
            ]
        )
        tifffile.imwrite(folder / f"s{f}.tif", stack, metadata={"axes": "ZYX"})


@pytest.mark.cluster
def test_killed_worker_loses_and_duplicates_nothing(tmp_path):
    from distributed import Client, LocalCluster

    src = tmp_path / "in"
    _write_planes(src, files=3, planes=2)
    cfg = BatchConfig(tmp_path / "out", device="cpu")
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    try:
        client.wait_for_workers(2)
        pids = list(client.run(os.getpid).values())
        killed = threading.Event()
        planes_done, reported = [0], []

        def kill_one(done, total):
            planes_done[0] = done
            # after the first plane, kill a worker while the others are still being labelled
            if not killed.is_set():
                killed.set()
                os.kill(pids[0], signal.SIGKILL)

        report = run_batch(
            [src],
            cfg,
            executor=DaskExecutor(client),
            progress=False,
            log=lambda line: reported.append((planes_done[0], line)),
            on_plane_done=kill_one,
            files_in_flight=2,
        )
        assert killed.is_set()
        # on dask too, files are written as they finish: the first before the third file's planes
        assert [n for n, line in reported if line.startswith("done")][0] < 6, reported
        assert report.ok, report.failed
        assert sorted(os.path.basename(s["input"]) for s in report.done) == ["s0.tif", "s1.tif", "s2.tif"]
        names = sorted(p.name for p in (tmp_path / "out").iterdir())
        assert names == sorted(
            [f"s{f}{suffix}" for f in range(3) for suffix in ("_labels.tif", ".labels.json")]
        )
        for f in range(3):
            labels = read_labels(tmp_path / "out" / f"s{f}_labels.tif")
            summary = json.loads((tmp_path / "out" / f"s{f}.labels.json").read_text())
            assert labels.shape == (2, 96, 96)
            assert summary["objects"] == len(np.unique(labels)) - 1 == 2
    finally:
        client.close()
        cluster.close()
