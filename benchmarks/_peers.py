"""The peer reference implementations (official segment-anything + LiteMedSAM), side by side with ours.

The peers live in their own virtual environment, built by ``../shared/peers/setup.sh`` (called here
when missing). :func:`reference_module` imports ``reference.py`` into this process with the peers'
pure-Python packages appended to ``sys.path`` (torch and numpy stay ours: the same build), so both
implementations can be timed in alternation in one run.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NAPARI_SAM_SHARED", REPO.parent / "shared"))
PEERS_DIR = SHARED / "peers"
PEERS_VENV = Path(os.environ.get("NAPARI_SAM_PEERS_VENV", "/tmp/sam-peers"))


def ensure_peers() -> Path:
    """Build the peers' venv if needed; returns its ``peer-python`` wrapper."""
    wrapper = PEERS_VENV / "bin" / "peer-python"
    if not wrapper.exists():
        setup = PEERS_DIR / "setup.sh"
        if not setup.exists():
            raise SystemExit(
                f"peer material not found at {PEERS_DIR}; set NAPARI_SAM_SHARED to the shared/ folder"
            )
        subprocess.run(["bash", str(setup), str(PEERS_VENV)], check=True)
    return wrapper


def reference_module():
    """``reference.py`` imported in this process (peer packages importable, our torch)."""
    ensure_peers()
    site = next((PEERS_VENV / "lib").glob("python3*/site-packages"))
    for path in (str(PEERS_DIR / "torchvision_standin"), str(site)):
        if path not in sys.path:
            sys.path.append(path)
    spec = importlib.util.spec_from_file_location("peer_reference", PEERS_DIR / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_reference(*args: str) -> str:
    """Run ``reference.py ARGS`` in the peers' interpreter; returns its stdout."""
    wrapper = ensure_peers()
    out = subprocess.run(
        [str(wrapper), str(PEERS_DIR / "reference.py"), *args], capture_output=True, text=True, check=True
    )
    return out.stdout
