"""benchmarks/gpu_check.py stays runnable where no GPU is: it refuses a missing CUDA device with a clear
message, and its --dry-run runs the same stages on the CPU at a small scale."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


def _run(*args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_refuses_a_missing_gpu_with_a_hint():
    proc = _run("--device", "cuda", timeout=300)
    assert proc.returncode == 2
    assert "no CUDA GPU" in proc.stderr and "--dry-run --device cpu" in proc.stderr


@pytest.mark.slow
def test_dry_run_on_the_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = _run(
        "--dry-run", "--device", "cpu", "--only", "goldens", "encoder_vit_b", "prompt", "--json-out", str(out)
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["dry_run"] and result["ok"]
    assert result["results"]["goldens"]["failed"] == []
    assert result["results"]["encoder_vit_b"]["images_per_s"] > 0
    assert result["results"]["prompt"]["median_ms"] > 0
    assert "DRY RUN" in proc.stdout and proc.stdout.strip().splitlines()[-1].startswith("{")
