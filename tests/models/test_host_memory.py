"""A CPU model keeps freed memory for reuse: from the second encoder pass on, a worker thread's pass
page-faults nothing in (with the system's malloc settings every pass faults its ~70 MB activations in
anew), and ``NAPARI_SAM_MALLOC=system`` leaves malloc as it is.

Each case runs in a fresh interpreter: the setting is process-wide and applied once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PASSES = """
import json, resource, threading, torch
from napari_sam.models.host_memory import keep_freed_memory
from napari_sam.models.loading import load_model

model = load_model("lite_medsam", device="cpu")
x = torch.randn(1, 3, 256, 256)
faults = []

def passes():  # as the front ends run them: in a worker thread
    with torch.inference_mode():
        for _ in range(4):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            model.network.image_encoder(x)
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)

worker = threading.Thread(target=passes)
worker.start()
worker.join()
print(json.dumps({"setting": keep_freed_memory(), "faults": faults}))
"""


def run_passes(**env) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PASSES],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "2", **env},
        timeout=300,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_encoder_passes_reuse_freed_memory():
    kept = run_passes()
    system = run_passes(NAPARI_SAM_MALLOC="system")
    assert kept["setting"] == "kept"
    assert system["setting"] == "system (NAPARI_SAM_MALLOC=system)"
    # the activations of one 256² pass span ~300 MB: tens of thousands of 4 KB pages
    assert min(system["faults"][1:]) > 20_000, system
    assert min(kept["faults"][2:]) < 2_000, kept
    assert max(kept["faults"][2:]) < 20_000, kept


ONCE = """
import os
from napari_sam.models.host_memory import keep_freed_memory
first = keep_freed_memory()
os.environ["NAPARI_SAM_MALLOC"] = "system"  # too late: the process's setting was made already
print(first, "|", keep_freed_memory())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_applied_once_per_process():
    env = {k: v for k, v in os.environ.items() if k != "NAPARI_SAM_MALLOC"}
    out = subprocess.run(
        [sys.executable, "-c", ONCE], capture_output=True, text=True, check=True, env=env, timeout=120
    )
    assert out.stdout.strip().splitlines()[-1] == "kept | kept"
