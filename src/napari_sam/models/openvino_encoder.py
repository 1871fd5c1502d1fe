"""The image encoder run by OpenVINO on the CPU: the ``"openvino"`` backend of
:func:`~napari_sam.models.loading.load_model`.

On an Intel Xeon with AMX (2 threads, one 256² LiteMedSAM window, alternating in one process,
``/tmp/s21/ovs2.py``) OpenVINO's bf16 runs our encoder in 0.16–0.17 s where the torch bf16 copy
(:mod:`~napari_sam.models.bf16_weights`) takes 0.20 s, as fast as OpenVINO runs an export of the
reference encoder (0.155–0.165 s), with the same error against fp32 (relative 0.011 both). On an AMD
EPYC with AVX-512 BF16 the two were equal. So ``auto`` picks OpenVINO for LiteMedSAM where the model
runs in bf16 on a CPU (``precision="auto"`` chooses bf16 only where it measures faster than fp32,
:func:`~napari_sam.models.device.auto_precision`) and the ``openvino`` package is installed
(``pip install "napari-sam[openvino]"``; ``make`` installs it), and torch elsewhere. Other
architectures were not measured: they run OpenVINO only when asked for.

The encoder is exported once (``openvino.convert_model``, about 8 s for LiteMedSAM on two cores) and
kept as OpenVINO IR in the model cache, keyed by a hash of the encoder's weights, the input size and
the OpenVINO version. A later process compiles from there in about 0.3 s. When the encoder's weights
change in the process (a fine-tune merging adapters), the next call exports again. Windows go through
one at a time, on one stream with all threads: a batch of 4 took 0.285 s a window against 0.23–0.27 s
one by one (``/tmp/s21/ovp.py``), and the latency hint instead of one stream or OpenVINO's
compiled-blob cache made a window 10–15 % slower.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from pathlib import Path

import torch

from napari_sam.io.atomic import atomic_path
from napari_sam.models.bf16_weights import module_signature
from napari_sam.models.fallback import fall_back
from napari_sam.models.registry import ModelSpec, TinyViTConfig

BACKENDS = ("auto", "torch", "openvino")
EXPORT_VERSION = 1  # bump when the export itself changes, so cached IR is made again


def openvino_available() -> tuple[bool, str]:
    """Whether the ``openvino`` package can be imported here, and why not."""
    try:
        import openvino  # noqa: F401
    except ImportError as err:
        return False, f"the openvino package is not installed ({err})"
    return True, "openvino is installed"


def measured_faster(spec: ModelSpec) -> bool:
    """Whether OpenVINO was measured faster than torch for ``spec``'s encoder on bf16 CPUs: TinyViT at a
    256-px input (LiteMedSAM and its fine-tunes).
    """
    return isinstance(spec.encoder, TinyViTConfig) and spec.input_size <= 256


def check_backend(backend: str, compile: bool = False) -> str:
    """``backend`` in lower case, after checking it names one of :data:`BACKENDS` and does not go with
    ``compile`` (a torch compilation) as ``"openvino"``; ``ValueError`` naming the fix otherwise.
    """
    name = str(backend).lower()
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if compile and name == "openvino":
        raise ValueError(
            "compile=True (--compile) compiles the encoder with torch; it cannot go with "
            "backend='openvino' (--backend openvino): leave one of them out"
        )
    return name


def resolve_backend(backend: str, device: torch.device, precision: str, spec: ModelSpec) -> str:
    """Turn ``"auto"``, ``"torch"`` or ``"openvino"`` into the backend that runs the image encoder.

    ``"auto"`` is ``"openvino"`` on a CPU in bf16 for the encoders of :func:`measured_faster` where
    OpenVINO is installed, else ``"torch"``. An explicit ``"openvino"`` on a GPU or without the
    package raises ``ValueError`` (no silent fallback).
    """
    name = check_backend(backend)
    if name == "torch":
        return "torch"
    ok, why = openvino_available()
    if name == "openvino":
        if device.type != "cpu":
            raise ValueError(
                f"backend 'openvino' runs the image encoder on the CPU, but the device is {device}; "
                f"use device='cpu' or backend='torch'"
            )
        if not ok:
            raise ValueError(
                f"backend 'openvino' was asked for but {why}; install it with "
                f"pip install 'napari-sam[openvino]', or use backend='torch'"
            )
        return "openvino"
    auto = device.type == "cpu" and precision == "bf16" and measured_faster(spec)
    return "openvino" if auto and ok else "torch"


def weights_key(encoder: torch.nn.Module, input_size: int) -> str:
    """A hex key for the exported encoder: its weights (names and fp32 bytes), the input size, the
    OpenVINO version and :data:`EXPORT_VERSION`. About 20 ms for LiteMedSAM's encoder.
    """
    import openvino

    digest = hashlib.sha256(f"{input_size}|{openvino.__version__}|{EXPORT_VERSION}".encode())
    for name, tensor in encoder.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().float().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()[:24]


class OpenVinoEncoder:
    """Callable ``(encoder, x, precision) -> embeddings``: ``encoder`` exported to OpenVINO and compiled
    for the CPU in ``precision`` (``"bf16"`` or ``"fp32"``), on (B, 3, S, S) float32 inputs, returning
    float32 (B, C, h, w) embeddings.

    Parameters
    ----------
    cache_root
        Folder for the exported IR (``<cache_root>/openvino/<key>/``); None exports in memory on every
        process start.
    """

    def __init__(self, cache_root: str | os.PathLike | None) -> None:
        self.cache_root = None if cache_root is None else Path(cache_root) / "openvino"
        self.failed: str | None = None  # why exporting failed, once it did
        self._compiled: dict[str, object] = {}  # per precision
        self._signature: tuple | None = None
        self._lock = threading.Lock()

    def __call__(self, encoder: torch.nn.Module, x: torch.Tensor, precision: str) -> torch.Tensor | None:
        """The embeddings, or None where the caller should run the encoder in torch (see :meth:`prepare`)."""
        compiled = self.prepare(encoder, int(x.shape[-1]), precision)
        if compiled is None:
            return None
        request = compiled.create_infer_request()
        inputs = x.detach().float().contiguous().numpy()  # shares x's memory
        out = None
        for i in range(inputs.shape[0]):
            # OpenVINO's output buffer, shared, copied once into the torch result (no numpy copies)
            window = torch.from_numpy(request.infer({0: inputs[i : i + 1]}, share_outputs=True)[0])
            if out is None:
                out = torch.empty((inputs.shape[0], *window.shape[1:]), dtype=torch.float32)
            out[i : i + 1].copy_(window)
        return out

    def prepare(self, encoder: torch.nn.Module, size: int, precision: str):
        """``encoder`` exported (or read from the cache) and compiled for (B, 3, ``size``, ``size``) inputs
        now, if it is not yet; the compiled model. None where torch should run the encoder: OpenVINO
        failed on it (``failed`` says why; warned once), or it has forward hooks (they watch or change
        the torch module, so it runs).
        """
        if self.failed is not None:
            return None
        signature = module_signature(encoder)
        if any(pre or post for pre, post in signature[2]):
            return None
        try:
            return self._current(encoder, signature, size, precision)
        except Exception as err:  # an export or compile error: torch runs it instead
            self.failed = fall_back(
                err,
                "OpenVINO could not run the image encoder ({failed}); it runs in torch instead "
                "(load_model(backend='torch') skips the attempt).",
                stacklevel=3,
            )
            return None

    def _current(self, encoder: torch.nn.Module, signature: tuple, size: int, precision: str):
        with self._lock:
            if signature != self._signature:
                self._compiled.clear()
                self._signature = signature
            if precision not in self._compiled:
                self._compiled[precision] = self._compile(encoder, size, precision)
            return self._compiled[precision]

    def _compile(self, encoder: torch.nn.Module, size: int, precision: str):
        import openvino as ov

        core = ov.Core()
        config = {
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
            "INFERENCE_NUM_THREADS": max(1, torch.get_num_threads()),
            "NUM_STREAMS": 1,  # one request at a time, all threads on it
        }
        if self.cache_root is None:
            return core.compile_model(_export(encoder, size), "CPU", config)
        folder = self.cache_root / weights_key(encoder, size)
        xml = folder / "encoder.xml"
        if not xml.is_file():
            _save_atomically(_export(encoder, size), folder)
        # no compiled-blob cache (CACHE_DIR): a model loaded from the blob ran 0.165 s a window against
        # 0.143-0.150 s compiled from the IR, to save 0.15 s of compiling per process (/tmp/s21/blob.py)
        return core.compile_model(str(xml), "CPU", config)


def _export(encoder: torch.nn.Module, size: int):
    """``encoder`` converted to an OpenVINO model with a free batch dimension."""
    import openvino as ov

    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shape checks fixed by the input size
            return ov.convert_model(
                encoder,
                example_input=torch.zeros(1, 3, size, size),
                input=[ov.PartialShape([-1, 3, size, size])],
            )
    finally:
        encoder.train(was_training)


def _save_atomically(model, folder: Path) -> None:
    """Write ``model`` as ``folder/encoder.xml`` + ``.bin``: into a temporary folder beside it, renamed
    into place whole (:func:`~napari_sam.io.atomic.atomic_path`: a process killed meanwhile leaves no
    half-written IR under the key). Two processes exporting at once write the same IR; the later
    replaces the earlier whole.
    """
    import openvino as ov

    with atomic_path(folder, folder=True) as staging:
        ov.save_model(model, str(staging / "encoder.xml"), compress_to_fp16=False)
