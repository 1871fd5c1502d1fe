"""A lock file beside a folder that several processes may write: ``.NAME.lock`` holding the holder's
pid, host and start time.

The lock is taken by creating the file exclusively (``O_CREAT | O_EXCL``, atomic on local and network
file systems) and released by deleting it. A lock left by a process that died (same host, pid no longer
running) is taken over; a lock held by a live process, or by another host, is waited for and then
reported with its holder.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from pathlib import Path


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs (on Windows, where signal 0 is not a probe, it is
    assumed to: a lock is then waited for and reported, never taken over).
    """
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


class FolderLock:
    """Exclusive lock on ``target`` (a folder that may be replaced as a whole) through a sibling file.

    Use as a context manager; not re-entrant. ``timeout`` seconds of waiting for a live holder end in a
    ``ValueError`` naming it.
    """

    def __init__(self, target: str | os.PathLike, timeout: float = 120.0, poll: float = 0.02) -> None:
        target = Path(target)
        self.target = target
        self.path = target.parent / f".{target.name}.lock"
        self.timeout = timeout
        self.poll = poll
        self._token: str | None = None

    def _holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None  # vanished, or its holder is still writing it

    @staticmethod
    def _is_stale(holder: dict) -> bool:
        return holder.get("host") == socket.gethostname() and not _alive(int(holder.get("pid", -1)))

    def _abandoned(self, grace: float = 10.0) -> bool:
        """An unreadable lock file older than ``grace`` seconds: its holder died while writing it."""
        try:
            return time.time() - self.path.stat().st_mtime > grace
        except OSError:
            return False

    def _take_over(self, holder: dict | None) -> None:
        """Remove a dead holder's lock file without ever removing a live one's."""
        aside = self.path.with_name(f"{self.path.name}.{uuid.uuid4().hex[:12]}.stale")
        try:
            os.replace(self.path, aside)
        except FileNotFoundError:
            return
        try:
            moved = json.loads(aside.read_text())
        except (OSError, ValueError):
            moved = None
        if moved != holder:  # a live process re-took the lock meanwhile: give it back
            with contextlib.suppress(OSError):
                os.link(aside, self.path)
        aside.unlink(missing_ok=True)

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "token": token}
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if (holder is not None and self._is_stale(holder)) or (holder is None and self._abandoned()):
                    self._take_over(holder)
                    continue
                if time.monotonic() > deadline:
                    who = (
                        f"process {holder.get('pid')} on {holder.get('host')}"
                        if holder
                        else "another process"
                    )
                    raise ValueError(
                        f"{self.target} is being written by {who} (lock file {self.path}); wait for it to "
                        f"finish, or delete the lock file if that process is gone"
                    ) from None
                time.sleep(self.poll)
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
            self._token = token
            return

    def release(self) -> None:
        if self._token is None:
            return
        holder = self._holder()
        if holder is not None and holder.get("token") == self._token:
            self.path.unlink(missing_ok=True)
        self._token = None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
