"""Atomic writes: a file or folder appears at its target complete, or not at all.

Everything the package writes for later (label images, annotation folders, embedding caches, run
summaries, downloaded checkpoints, fine-tuned weights) is first written under a temporary name next to
the target (``.NAME.<random>.tmp``, same folder, so the same file system), flushed to disk (fsync),
then renamed into place with :func:`os.replace`. A reader, or a rerun after a crash or a kill, sees the
old target or the new one, never half of one; leftover temporaries are found by
:func:`stale_temporaries`.

>>> with atomic_path("out/labels.tif") as tmp:
...     tifffile.imwrite(tmp, labels)
>>> with atomic_path("out/annotations", folder=True) as tmp:
...     (tmp / "objects.json").write_text("{}")
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

TMP_SUFFIX = ".tmp"


def temporary_path(target: str | os.PathLike) -> Path:
    """A unique temporary sibling of ``target``: ``.NAME.<hex>.tmp`` in the same folder."""
    t = Path(target)
    return t.with_name(f".{t.name}.{uuid.uuid4().hex[:12]}{TMP_SUFFIX}")


def stale_temporaries(target: str | os.PathLike) -> list[Path]:
    """Leftover temporaries of ``target`` (from an interrupted write)."""
    t = Path(target)
    if not t.parent.exists():
        return []
    return sorted(t.parent.glob(f".{t.name}.*{TMP_SUFFIX}"))


def remove_path(path: str | os.PathLike) -> None:
    """Remove a file or folder if present."""
    p = Path(path)
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        p.unlink()


def _fsync_dir(path: Path) -> None:
    """Flush a folder's entries (names) to disk, where the platform allows opening folders."""
    if os.name == "nt":  # Windows cannot open a folder; its renames are journaled by NTFS
        return
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_tree(path: str | os.PathLike) -> None:
    """Flush a file, or every file and folder below a folder, to disk."""
    p = Path(path)
    if p.is_dir():
        for root, _, files in os.walk(p):
            for name in files:
                fsync_tree(Path(root, name))
            _fsync_dir(Path(root))
        return
    with open(p, "rb+") as fh:
        os.fsync(fh.fileno())


def commit(tmp: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Flush ``tmp`` (a file or folder) to disk and rename it to ``target``, replacing an older one.

    A folder target is first moved aside (``os.replace`` cannot replace a non-empty folder), then the
    new one moved in, then the old one removed.
    """
    tmp, target = Path(tmp), Path(target)
    fsync_tree(tmp)
    if target.is_dir() and not target.is_symlink():
        old = temporary_path(target)
        os.replace(target, old)
        os.replace(tmp, target)
        remove_path(old)
    else:
        os.replace(tmp, target)
    _fsync_dir(target.parent)
    return target


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, folder: bool = False) -> Iterator[Path]:
    """Write ``target`` atomically: yields a temporary sibling path to write (an empty folder made for
    you with ``folder=True``, else a file path not yet created); when the block ends without an error
    it is flushed and renamed to ``target`` (:func:`commit`), otherwise removed.

    The parent folder is created if needed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(target)
    if folder:
        tmp.mkdir()
    try:
        yield tmp
        commit(tmp, target)
    except BaseException:
        remove_path(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, text.encode(encoding))


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented JSON (keys sorted, unknown types as strings), atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
