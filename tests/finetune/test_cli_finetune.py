"""``napari-sam finetune`` as a real process: a tqdm bar on standard error, Ctrl-C (SIGINT) keeps the best
model so far, the last line of standard output is the weights file, which loads by its hash."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tifffile

from napari_sam.io.samples import blobs

pytestmark = pytest.mark.slow

CENTRES = [(16 + 32 * (i // 3), 16 + 32 * (i % 3)) for i in range(9)]


def test_cli_ctrl_c_keeps_the_best_model(tmp_path):
    from napari_sam.models.loading import load_model

    image, labels = blobs((96, 96), CENTRES, [11] * len(CENTRES), seed=4)
    tifffile.imwrite(tmp_path / "img.tif", image)
    tifffile.imwrite(tmp_path / "lab.tif", labels)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "napari_sam._cli.main", "finetune", str(tmp_path / "img.tif")]
    cmd += ["--labels", str(tmp_path / "lab.tif"), "-o", str(out), "--minutes", "30", "--device", "cpu"]
    cmd += ["--augment", "0"]
    err_path = tmp_path / "stderr.txt"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        deadline = time.monotonic() + 20 * 60
        while "training" not in err_path.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, err_path.read_text()
            time.sleep(1)
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=20 * 60)
    stderr = err_path.read_text()
    assert proc.returncode == 0, stderr
    assert "embedding windows" in stderr and "stopping: the best model so far will be saved" in stderr
    last = stdout.strip().splitlines()[-1]
    assert Path(last) == out / "model.safetensors" and Path(last).is_file()
    assert "stopped by cancelled" in stdout
    loaded = load_model(last, device="cpu")
    assert loaded.spec.name == "lite_medsam" and len(loaded.checkpoint_sha256) == 64
