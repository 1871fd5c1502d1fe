"""Choosing the torch device (``auto`` means CUDA, then MPS, then CPU), the image encoder's precision
(``auto`` means bf16 where the hardware computes in bf16 faster than in fp32), and how many prompts it decodes
at once.
"""

from __future__ import annotations

import contextlib
import functools
import time

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda[:i]"`` or ``"mps"`` into a device that exists.

    An explicit device that is not there raises ``ValueError`` (no silent fallback to the CPU).
    """
    if isinstance(device, torch.device):
        device = str(device)
    name = str(device).lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} was asked for but this machine has no CUDA GPU; use 'auto' or 'cpu'"
            )
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r} does not exist: {torch.cuda.device_count()} CUDA device(s) here"
            )
        return dev
    if name == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise ValueError("device 'mps' was asked for but Apple MPS is not available; use 'auto' or 'cpu'")
        return torch.device("mps")
    raise ValueError(f"unknown device {device!r}; expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")


CPU_DECODE_CHUNK = 16  # prompts per mask-decoder pass on a CPU (see decode_chunk)


def decode_chunk(device: str | torch.device, wanted: int) -> int:
    """How many prompts to send through the mask decoder in one pass on ``device``.

    Each prompt carries its own copy of the image tokens through the decoder's two-way transformer; on a
    CPU, past 16 prompts those (B, 4096, 256) bf16 tensors (32 MB at 16) outgrow what the C library keeps
    for reuse and are page-faulted in anew on every pass. LiteMedSAM on two cores (AVX-512 BF16), the 408
    box prompts of segment everything on the 512² nuclei, replayed (``/tmp/decbench.py``): 2.50 s in
    passes of 8, 2.17 s of 16, 2.31 s of 24, 3.09 s of 32 (230 000 minor page faults); a 16² point grid
    3.15 s in passes of 4, 2.92 s of 16. GPUs keep ``wanted``.
    """
    if torch.device(device).type == "cpu":
        return max(1, min(int(wanted), CPU_DECODE_CHUNK))
    return max(1, int(wanted))


# -- numeric precision of the image encoder --------------------------------------------------------------
PRECISIONS = ("auto", "fp32", "bf16")


def bf16_support(device: str | torch.device) -> tuple[bool, str]:
    """Whether ``device`` runs bfloat16 matrix products in hardware, and why (or why not).

    CPUs qualify with bf16 matrix instructions (Intel AMX tiles or AVX-512 BF16; oneDNN picks them);
    elsewhere a CPU converts bf16 to fp32 around every product, which is slower than fp32 and no more
    accurate. CUDA GPUs qualify from compute capability 8.0 (Ampere) on. MPS is treated as fp32-only.
    """
    dev = torch.device(device)
    if dev.type == "cpu":
        amx = _cpu_flag("_is_amx_tile_supported")
        avx512_bf16 = _cpu_flag("_is_avx512_bf16_supported")
        if amx or avx512_bf16:
            units = " and ".join(n for n, ok in (("AMX", amx), ("AVX-512 BF16", avx512_bf16)) if ok)
            return True, f"this CPU has bf16 matrix units ({units})"
        return False, (
            f"this CPU has no bf16 matrix units (neither AMX nor AVX-512 BF16; torch sees "
            f"{torch.backends.cpu.get_cpu_capability()}), so bf16 would be emulated and slower than fp32"
        )
    if dev.type == "cuda":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False):
            return True, f"{torch.cuda.get_device_name(dev)} computes in bf16"
        return False, "this CUDA GPU predates bf16 (compute capability < 8.0)"
    return False, f"bf16 is not enabled for {dev.type} devices"


def _cpu_flag(name: str) -> bool:
    probe = getattr(torch.cpu, name, None)
    try:
        return bool(probe()) if probe is not None else False
    except RuntimeError:
        return False


BF16_TIME_SHARE = 0.85  # auto picks bf16 on a CPU without AMX where its products take at most this share
PROBE_PRODUCTS = ((3136, 160, 480), (4096, 160, 640))  # (rows, in, out): TinyViT's attention and MLP sizes


def bf16_measured_faster(threads: int | None = None) -> tuple[bool, str]:
    """Whether this CPU's bf16 matrix products run faster than its fp32 ones, measured, and the figures.

    CPUs with AVX-512 BF16 but no AMX differ: on one (an AMD EPYC) the encoder ran 1.7× faster in bf16,
    on another (an Intel Xeon whose AMX a virtual machine hides) bf16 products took 1.2–1.9× the fp32
    time. So there the two are timed on products of the encoder's sizes (about 0.15 s, once per process
    and thread count): bf16 pays where it takes at most ``BF16_TIME_SHARE`` of the fp32 time.
    """
    share = _bf16_time_share(int(threads or torch.get_num_threads()))
    verdict = "faster" if share <= BF16_TIME_SHARE else "not faster"
    return share <= BF16_TIME_SHARE, (
        f"bf16 products measured {verdict} than fp32 here ({share:.2f}× the fp32 time)"
    )


@functools.lru_cache(maxsize=8)
def _bf16_time_share(threads: int) -> float:
    """bf16's time over fp32's for :data:`PROBE_PRODUCTS` (``threads`` keys the cache).

    The two alternate over four rounds after a warm-up round, and each keeps its best round: a first
    product in a process runs slow (thread pools starting), and timing one precision after the other
    once gave 0.85 where alternating gives 1.5-1.8.
    """
    with torch.inference_mode():
        operands = {
            dtype: [
                (torch.randn(r, i, dtype=dtype), torch.randn(o, i, dtype=dtype)) for r, i, o in PROBE_PRODUCTS
            ]
            for dtype in (torch.float32, torch.bfloat16)
        }
        best = dict.fromkeys(operands, float("inf"))
        for round_ in range(5):
            for dtype, pairs in operands.items():
                t0 = time.perf_counter()
                for x, w in pairs:
                    torch.nn.functional.linear(x, w)
                if round_:  # round 0 warms up
                    best[dtype] = min(best[dtype], time.perf_counter() - t0)
    return best[torch.bfloat16] / max(best[torch.float32], 1e-9)


def auto_precision(device: str | torch.device) -> tuple[str, str]:
    """What ``precision="auto"`` runs on ``device``, and why.

    bf16 where :func:`bf16_support` says the hardware computes in bf16: CUDA GPUs and CPUs with AMX at
    once, CPUs with AVX-512 BF16 alone where :func:`bf16_measured_faster` says so; fp32 elsewhere.
    """
    ok, why = bf16_support(device)
    if not ok:
        return "fp32", why
    dev = torch.device(device)
    if dev.type == "cpu" and not _cpu_flag("_is_amx_tile_supported"):
        faster, measured = bf16_measured_faster()
        return ("bf16" if faster else "fp32"), f"{why}; {measured}"
    return "bf16", why


def resolve_precision(precision: str, device: str | torch.device) -> str:
    """Turn ``"auto"``, ``"fp32"`` or ``"bf16"`` into the precision the image encoder runs in on ``device``.

    ``"auto"`` is :func:`auto_precision`'s choice: ``"bf16"`` where the hardware computes in bf16 and
    (on CPUs without AMX) measures faster in it, else ``"fp32"``. An explicit ``"bf16"`` where the
    hardware has no bf16 units raises ``ValueError`` (no silent fallback); where it has them it is
    kept, faster or not.
    """
    name = str(precision).lower()
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    if name == "fp32":
        return "fp32"
    if name == "auto":
        return auto_precision(device)[0]
    ok, why = bf16_support(device)
    if not ok:
        raise ValueError(f"precision 'bf16' was asked for on {device}, but {why}; use 'auto' or 'fp32'")
    return "bf16"


def autocast(device: str | torch.device, precision: str):
    """The context the image encoder runs in: bf16 autocast for ``"bf16"``, nothing for ``"fp32"``.

    Autocast keeps normalisations, softmax and the residual stream in fp32 and runs the matrix products
    (linear, convolution, attention) in bf16.
    """
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


GPU_SMALL_INPUT_BATCH = 32  # windows per encoder pass on a GPU for models of ≤ 256-px input
GPU_SMALL_INPUT_MAX_BATCH = 64  # ... and at most (see encoder_batch)


def encoder_batch(device: str | torch.device, input_size: int, wanted: int) -> int:
    """How many windows to send through the image encoder in one pass on ``device``.

    A CPU keeps ``wanted`` (the caller's latency/throughput choice). A GPU is starved by a few 256² tiles
    (LiteMedSAM: a pass of 4 tiles costs about what a pass of 32 does), so small-input models get at
    least :data:`GPU_SMALL_INPUT_BATCH`, and at most :data:`GPU_SMALL_INPUT_MAX_BATCH`: from 128 tiles a
    pass on, cuDNN picks a slow depthwise-convolution kernel (H200, LiteMedSAM bf16: 669 tiles/s at 64,
    293 at 128, 285 at 256). 1024-px models keep ``wanted`` (their activations fill memory).
    """
    wanted = max(1, int(wanted))
    if torch.device(device).type == "cuda" and input_size <= 256:
        return min(max(wanted, GPU_SMALL_INPUT_BATCH), GPU_SMALL_INPUT_MAX_BATCH)
    return wanted
