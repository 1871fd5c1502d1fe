"""The saved fine-tune: ``model.safetensors`` (the full network under the base architecture's keys) and
``model.json`` (what it is and how it was made), tied to each other by hashes.

* The sidecar records the weights file's sha256 (``weights.sha256``).
* The weights file's safetensors metadata records the sha256 of the sidecar's canonical JSON without
  that field (``napari_sam_sidecar_sha256``).

So editing either file is detected on load (:func:`verify`). Both are written to temporary files in the
output folder and renamed into place; a failure leaves no partial file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

from napari_sam.io.atomic import atomic_write_bytes

WEIGHTS_NAME = "model.safetensors"
SIDECAR_NAME = "model.json"
FORMAT = "napari-sam fine-tune"
META_KEY = "napari_sam_sidecar_sha256"
CACHE_SUBDIR = "finetuned"


def _canonical(sidecar: dict) -> bytes:
    core = {k: v for k, v in sidecar.items() if k != "weights"}
    core["weights"] = {k: v for k, v in sidecar.get("weights", {}).items() if k != "sha256"}
    return json.dumps(core, sort_keys=True, separators=(",", ":")).encode()


def sidecar_digest(sidecar: dict) -> str:
    """sha256 of the sidecar without the weights hash (what the weights file's metadata records)."""
    return hashlib.sha256(_canonical(sidecar)).hexdigest()


def sidecar_path(weights: str | os.PathLike) -> Path:
    """The sidecar of a weights file: ``model.json`` for ``model.safetensors`` (same stem, ``.json``)."""
    return Path(weights).with_suffix(".json")


def check_output_dir(outdir: str | os.PathLike) -> Path:
    """``ValueError`` unless ``outdir`` is (or can be made) a writable folder; nothing is left behind."""
    out = Path(outdir).expanduser()
    if out.exists() and not out.is_dir():
        raise ValueError(f"output folder {out} is a file; give a folder (it is created if missing)")
    existed = out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        if not existed and out.exists():
            with contextlib.suppress(OSError):
                out.rmdir()
        raise ValueError(f"output folder {out} is not writable ({err.strerror or err})") from None
    if not existed:
        out.rmdir()  # created again when the model is saved: a failed run leaves nothing
    return out


def write(outdir: str | os.PathLike, state: dict, sidecar: dict) -> Path:
    """Write ``state`` ({name: tensor}) and ``sidecar`` into ``outdir``; returns the weights path.

    ``sidecar`` gets its ``weights`` entry (file name, sha256, tensor count) filled in.
    """
    from safetensors.torch import save

    out = Path(outdir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    sidecar = dict(sidecar)
    sidecar["format"] = FORMAT
    sidecar["weights"] = {"file": WEIGHTS_NAME, "tensors": len(tensors)}
    payload = save(tensors, metadata={META_KEY: sidecar_digest(sidecar), "format": FORMAT})
    sidecar["weights"]["sha256"] = hashlib.sha256(payload).hexdigest()
    weights = out / WEIGHTS_NAME
    # sidecar first: a crash between the two leaves a sidecar that refuses the old weights, never
    # weights that pass for verified
    atomic_write_bytes(out / SIDECAR_NAME, (json.dumps(sidecar, indent=1) + "\n").encode())
    atomic_write_bytes(weights, payload)
    return weights


def read_sidecar(weights: str | os.PathLike) -> dict | None:
    """The sidecar next to ``weights`` when there is one that describes a fine-tune, else None."""
    path = sidecar_path(weights)
    if not path.is_file():
        return None
    try:
        sidecar = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"refusing {weights}: its sidecar {path} is not valid JSON ({err})") from None
    if not isinstance(sidecar, dict) or sidecar.get("format") != FORMAT:
        return None
    return sidecar


def verify(weights: str | os.PathLike, digest: str) -> dict | None:
    """Check a fine-tune's weights (sha256 ``digest``) against its sidecar and the sidecar against the
    hash the weights carry. Returns the sidecar, None when the file has none; ``ValueError`` on mismatch.
    """
    sidecar = read_sidecar(weights)
    if sidecar is None:
        return None
    expected = sidecar.get("weights", {}).get("sha256")
    if expected != digest:
        raise ValueError(
            f"refusing {weights}: its sha256 is {digest} but its sidecar {sidecar_path(weights).name} "
            f"records {expected}. The weights were changed or replaced after training; train again or "
            "restore them."
        )
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as fh:
        meta = fh.metadata() or {}
    if meta.get(META_KEY) != sidecar_digest(sidecar):
        raise ValueError(
            f"refusing {weights}: its sidecar {sidecar_path(weights).name} was edited after training (it no "
            "longer matches the hash recorded in the weights). Restore the original model.json."
        )
    return sidecar


def cached_finetunes(cache: str | os.PathLike | None = None) -> list[tuple[str, Path, dict]]:
    """Fine-tunes saved in the model cache (``<cache>/finetuned/NAME/model.safetensors``): (name, weights
    path, sidecar) sorted by name; unreadable ones are skipped.
    """
    from napari_sam.models.checkpoints import cache_dir

    root = cache_dir(cache) / CACHE_SUBDIR
    found = []
    if root.is_dir():
        for folder in sorted(root.iterdir()):
            weights = folder / WEIGHTS_NAME
            if weights.is_file():
                try:
                    sidecar = read_sidecar(weights)
                except ValueError:
                    continue
                if sidecar is not None:
                    found.append((folder.name, weights, sidecar))
    return found


def cache_folder(name: str, cache: str | os.PathLike | None = None) -> Path:
    """Where a fine-tune called ``name`` is saved in the model cache."""
    from napari_sam.models.checkpoints import cache_dir

    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"fine-tune name {name!r} must be a plain folder name (no slashes)")
    return cache_dir(cache) / CACHE_SUBDIR / name
