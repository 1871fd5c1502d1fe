"""Keep freed host memory for reuse, so a CPU encoder pass does not page-fault its activations in anew.

glibc's ``malloc`` serves every block of 32 MB or more (LiteMedSAM's first stage holds several
(1, 256, 256, 256) float32 activations, 67 MB each) with a fresh ``mmap`` and unmaps it on ``free``; a
worker thread's smaller blocks live in per-thread heaps that are unmapped when they empty. So every
encoder pass touched its activations as new pages: about 100 000 minor page faults and 0.3 s of kernel
time per 256² window on two cores, 20 % of the pass. With large blocks taken from the main heap
(``M_MMAP_MAX`` 0), one heap for all threads (``M_ARENA_MAX`` 1) and up to ``retain_bytes`` of free heap
kept mapped (``M_TRIM_THRESHOLD``), the second pass reuses the first one's pages: no faults, and the
encoder runs in 1.03–1.14 s instead of 1.29–1.43 s (median of 6 passes in a worker thread, three
alternating runs each, ``benchmarks/bench_core.py`` row "freed memory kept / system malloc").

The price: the process keeps up to ``retain_bytes`` of freed memory mapped (not returned to the
operating system) and large arrays freed in the middle of the heap are reused rather than unmapped. It is
a process-wide setting of the C library, applied once by :func:`keep_freed_memory`
(:func:`~napari_sam.models.loading.load_model` does for a CPU model); ``NAPARI_SAM_MALLOC=system`` in the
environment leaves the C library as it is. Other C libraries (macOS, Windows, musl) are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt(3) parameters, from glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8

OPT_OUT = "NAPARI_SAM_MALLOC"  # "system": leave malloc as it is
RETAIN_BYTES = 1 << 30

_state: dict[str, str] = {}  # process-wide: the C library's settings are per process


def keep_freed_memory(retain_bytes: int = RETAIN_BYTES) -> str:
    """Make glibc's malloc keep freed memory for reuse (see the module's docstring); once per process.

    Parameters
    ----------
    retain_bytes
        Free memory at the top of the heap kept mapped before it is returned to the operating system.

    Returns
    -------
    str
        What was done, for logs and summaries: ``"kept"`` (applied now or earlier), ``"system (…)"``
        with the reason it was not applied (opted out, not glibc, a call refused).
    """
    if "result" in _state:
        return _state["result"]
    _state["result"] = result = _apply(int(retain_bytes))
    return result


def _apply(retain_bytes: int) -> str:
    if os.environ.get(OPT_OUT, "").strip().lower() == "system":
        return f"system ({OPT_OUT}=system)"
    if not sys.platform.startswith("linux"):
        return f"system (not glibc: {sys.platform})"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 (glibc only: musl has mallopt as a no-op stub)
    except (OSError, AttributeError):
        return "system (not glibc)"
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    retain = max(0, min(retain_bytes, 2**31 - 1))
    for param, value in ((M_TRIM_THRESHOLD, retain), (M_MMAP_MAX, 0), (M_ARENA_MAX, 1)):
        if mallopt(param, value) != 1:
            return f"system (mallopt({param}, {value}) refused)"
    return "kept"
