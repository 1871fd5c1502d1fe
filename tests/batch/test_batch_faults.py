"""Batch labeling under faults (issue 14): outputs appear file by file, a kill -9 keeps the finished
files, a bad model or output folder is one clear error before any plane, stops keep finished files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile

from napari_sam.batch.run import BatchConfig, run_batch
from napari_sam.embeddings.embedder import Cancelled
from napari_sam.io.labels import read_labels
from napari_sam.io.samples import blobs


def _write_files(folder, files=3, planes=1, side=64):
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        stack = [
            blobs((side, side), [(20, 20 + 3 * f), (44, 44)], [8, 9], seed=10 * f + z)[0]
            for z in range(planes)
        ]
        tifffile.imwrite(folder / f"s{f}.tif", stack[0] if planes == 1 else np.stack(stack))
    return sorted(folder.iterdir())


def _run_logged(inputs, config, **kwargs):
    """run_batch, recording how many planes were done when each file was reported."""
    planes_done = [0]
    events: list[tuple[int, str]] = []
    report = run_batch(
        inputs,
        config,
        progress=False,
        log=lambda line: events.append((planes_done[0], line)),
        on_plane_done=lambda done, total: planes_done.__setitem__(0, done),
        **kwargs,
    )
    return report, events


def _check_complete(out, stem):
    labels = read_labels(out / f"{stem}_labels.tif")
    summary = json.loads((out / f"{stem}.labels.json").read_text())
    assert list(labels.shape) == summary["shape"][-2:] or list(labels.shape) == summary["shape"]
    assert summary["objects"] == len(np.unique(labels)) - (1 if (labels == 0).any() else 0)
    return summary


@pytest.mark.slow
def test_each_file_is_written_as_soon_as_its_planes_are_done(tmp_path, lite_medsam):
    """Before: every plane was queued first, so the first file was written after the last plane."""
    inputs = _write_files(tmp_path / "in", files=3)
    report, events = _run_logged([tmp_path / "in"], BatchConfig(tmp_path / "out", device="cpu"))
    assert report.ok and len(report.done) == 3, report.failed
    done_at = [n for n, line in events if line.startswith("done")]
    assert done_at[0] < 3, events  # the first file was on disk while later planes were still to come
    assert done_at == sorted(done_at)
    for p in inputs:
        _check_complete(tmp_path / "out", p.stem)


@pytest.mark.slow
def test_kill_9_keeps_the_finished_files_and_the_rerun_does_only_the_rest(tmp_path, lite_medsam):
    inputs = _write_files(tmp_path / "in", files=3)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "napari_sam._cli.main", "label", str(tmp_path / "in"), "-o", str(out)]
    proc = subprocess.Popen([*cmd, "--device", "cpu", "--no-progress"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 600
        while not list(out.glob("*.labels.json")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # right after the first file's summary appeared
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    finished = sorted(p.name.split(".")[0] for p in out.glob("*.labels.json"))
    assert 1 <= len(finished) < 3, finished  # the first file is safe; the run was cut short
    for stem in finished:
        _check_complete(out, stem)  # complete, readable, consistent with its summary
    report, _ = _run_logged([tmp_path / "in"], BatchConfig(out, device="cpu"))
    assert report.ok, report.failed
    assert sorted(os.path.basename(s)[:-4] for s in report.skipped) == finished
    assert len(report.done) == 3 - len(finished)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"s{f}{suffix}" for f in range(3) for suffix in ("_labels.tif", ".labels.json")
    )
    for p in inputs:
        _check_complete(out, p.stem)


@pytest.mark.slow
def test_a_stop_keeps_the_finished_files(tmp_path, lite_medsam):
    _write_files(tmp_path / "in", files=3)
    seen = []

    def stop() -> bool:
        return bool(list((tmp_path / "out").glob("*.labels.json")))

    with pytest.raises(Cancelled, match="finished file"):
        run_batch(
            [tmp_path / "in"],
            BatchConfig(tmp_path / "out", device="cpu"),
            progress=lambda done, total: seen.append((done, total)),
            log=lambda line: None,
            should_stop=stop,
        )
    assert seen[0] == (1, 3) and seen[-1][0] < 3
    finished = list((tmp_path / "out").glob("*.labels.json"))
    assert 1 <= len(finished) < 3
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_a_bad_model_is_one_error_before_any_plane(tmp_path):
    _write_files(tmp_path / "in", files=2)
    planes = []
    for model, match in (("lite_medsm", "unknown model 'lite_medsm'"), (str(tmp_path / "no.pth"), "neither")):
        with pytest.raises(ValueError, match=match):
            run_batch(
                [tmp_path / "in"],
                BatchConfig(tmp_path / "out", model=model, device="cpu"),
                progress=False,
                on_plane_done=lambda done, total: planes.append(done),
            )
    assert planes == [] and not list((tmp_path / "out").iterdir())


def test_bad_encoder_settings_are_refused_when_the_job_is_described(tmp_path):
    """The same checks as load_model's, before any worker starts or anything is written."""
    with pytest.raises(ValueError, match="unknown backend 'onnx'.*auto, torch, openvino"):
        BatchConfig(tmp_path / "out", backend="onnx")
    with pytest.raises(ValueError, match="--compile.*--backend openvino.*leave one of them out"):
        BatchConfig(tmp_path / "out", backend="openvino", compile=True)
    assert not (tmp_path / "out").exists()


def test_an_output_that_is_a_file_or_read_only_is_one_error(tmp_path):
    _write_files(tmp_path / "in", files=1)
    (tmp_path / "taken").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        run_batch([tmp_path / "in"], BatchConfig(tmp_path / "taken", device="cpu"), progress=False)
    with pytest.raises(ValueError, match="cannot create the output folder"):
        run_batch([tmp_path / "in"], BatchConfig(tmp_path / "taken" / "sub", device="cpu"), progress=False)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: permissions are not enforced")
        with pytest.raises(ValueError, match="not writable"):
            run_batch([tmp_path / "in"], BatchConfig(locked, device="cpu"), progress=False)
        with pytest.raises(ValueError, match="cannot create the output folder"):
            run_batch([tmp_path / "in"], BatchConfig(locked / "sub", device="cpu"), progress=False)
    finally:
        locked.chmod(0o700)
