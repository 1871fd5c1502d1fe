"""Choosing the torch device (``auto`` means CUDA, then MPS, then CPU), and how many prompts it decodes
at once.
"""

from __future__ import annotations

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


CPU_DECODE_CHUNK = 4  # prompts per mask-decoder pass on a CPU (see decode_chunk)


def decode_chunk(device: str | torch.device, wanted: int) -> int:
    """How many prompts to send through the mask decoder in one pass on ``device``.

    Each prompt carries its own copy of the image tokens through the decoder's two-way transformer; on a
    CPU, past a few prompts those (B, 4096, 256) float tensors fall out of the caches and every prompt
    costs more (LiteMedSAM on two cores: 31 ms a box with 11 at once, 23 ms with 4; a 16² point grid
    16.4 s in passes of 64, 7.1 s in passes of 4). GPUs keep ``wanted``.
    """
    if torch.device(device).type == "cpu":
        return max(1, min(int(wanted), CPU_DECODE_CHUNK))
    return max(1, int(wanted))
