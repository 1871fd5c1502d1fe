"""Choosing the torch device (``auto`` means CUDA, then MPS, then CPU), the image encoder's precision
(``auto`` means bf16 where the hardware computes in bf16), and how many prompts it decodes
at once.
"""

from __future__ import annotations

import contextlib

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


def resolve_precision(precision: str, device: str | torch.device) -> str:
    """Turn ``"auto"``, ``"fp32"`` or ``"bf16"`` into the precision the image encoder runs in on ``device``.

    ``"auto"`` is ``"bf16"`` where :func:`bf16_support` says the hardware computes in bf16, else ``"fp32"``.
    An explicit ``"bf16"`` where it is not supported raises ``ValueError`` (no silent fallback).
    """
    name = str(precision).lower()
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    if name == "fp32":
        return "fp32"
    ok, why = bf16_support(device)
    if name == "bf16" and not ok:
        raise ValueError(f"precision 'bf16' was asked for on {device}, but {why}; use 'auto' or 'fp32'")
    return "bf16" if ok else "fp32"


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
