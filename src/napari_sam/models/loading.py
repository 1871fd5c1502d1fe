"""``load_model``: a registry name or a checkpoint file → a ready :class:`SamModel` on a device."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from napari_sam.models.bf16_weights import Bf16Copy
from napari_sam.models.checkpoints import cache_dir as cache_dir_of
from napari_sam.models.checkpoints import fetch_checkpoint, load_state_dict, sha256_file
from napari_sam.models.device import autocast, resolve_device, resolve_precision
from napari_sam.models.host_memory import keep_freed_memory
from napari_sam.models.mask_decoder import TokenRegions
from napari_sam.models.openvino_encoder import OpenVinoEncoder, check_backend, resolve_backend
from napari_sam.models.registry import DEFAULT_MODEL, MODELS, ModelSpec, get_spec
from napari_sam.models.sam import SamNetwork

_PREFIXES = ("module.", "sam.", "model.")


@dataclass
class SamModel:
    """A loaded model: the network plus what it needs to be driven correctly.

    Attributes
    ----------
    network
        :class:`~napari_sam.models.sam.SamNetwork` in eval mode on ``device``.
    spec
        The registry entry (architecture, preprocessing, automatic mode).
    device
        The torch device the network lives on.
    checkpoint
        Path of the weights, and ``checkpoint_sha256`` their hash (provenance, cache keys).
    precision
        ``"fp32"`` or ``"bf16"``: what the image encoder and the mask decoder compute in (the network's
        weights stay fp32). On a CPU with bf16 matrix units bf16 runs a bf16 copy of the encoder
        (``bf16_encoder``, :mod:`napari_sam.models.bf16_weights`); elsewhere, and for the decoder
        (:meth:`decode`), under autocast (:func:`napari_sam.models.device.autocast`). The decoder's bf16
        pays at every batch size (AMD EPYC with AVX-512 BF16, 2 threads: 1 box 16 → 12 ms, 32 boxes
        307 → 208 ms) and holds the quality bar (ground-truth-box mIoU on the nuclei 0.6311 → 0.6333,
        mask agreement with the fp32 decoder 0.97).
    compiled_encoder
        The image encoder through ``torch.compile`` (``load_model(compile=True)``; on a CPU a
        :class:`~napari_sam.models.cpu_compile.FrozenCompiled`, called with the encoder), or None. It runs
        batches of one fixed size, ``compiled_batch`` (the first batch it sees; smaller batches are
        padded), so that it compiles once.
    """

    network: SamNetwork
    spec: ModelSpec
    device: torch.device
    checkpoint: Path | None
    checkpoint_sha256: str | None
    precision: str = "fp32"
    backend: str = "torch"
    openvino_encoder: Callable | None = field(default=None, repr=False, compare=False)
    compiled_encoder: Callable | None = None
    compiled_batch: int = 0
    bf16_encoder: Bf16Copy = field(default_factory=Bf16Copy, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.spec.name

    def decode(
        self,
        embedding: torch.Tensor,
        points: tuple[torch.Tensor, torch.Tensor] | None = None,
        boxes: torch.Tensor | None = None,
        mask_logits: torch.Tensor | None = None,
        multimask: bool = False,
        regions: TokenRegions | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`SamNetwork.decode <napari_sam.models.sam.SamNetwork.decode>` in the model's
        ``precision``: float32 logits (B, M, 4h, 4w) (or per region) and predicted IoU (B, M).
        """
        with autocast(self.device, self.precision):
            logits, iou = self.network.decode(embedding, points, boxes, mask_logits, multimask, regions)
        return logits.float(), iou.float()

    @property
    def input_size(self) -> int:
        return self.spec.input_size

    def prepare_encoder(self) -> None:
        """Get the image encoder ready now rather than on its first window: through OpenVINO, export it
        (or read its cached export) and compile it; nothing for torch.
        """
        if self.openvino_encoder is not None:
            self.openvino_encoder.prepare(self.network.image_encoder, self.input_size, self.precision)

    @property
    def runs_as(self) -> str:
        """What runs the image encoder, as the front ends show it: ``"bf16"``, ``"fp32"``, ``"bf16,
        OpenVINO"``.
        """
        return f"{self.precision}, OpenVINO" if self.backend == "openvino" else self.precision

    def __repr__(self) -> str:
        return (
            f"SamModel({self.spec.name!r}, device={str(self.device)!r}, precision={self.precision!r}, "
            f"backend={self.backend!r}, "
            f"checkpoint={str(self.checkpoint)!r})"
        )


def unwrap_state_dict(
    state: dict, wrappers: tuple[str, ...] = ("model", "state_dict", "model_state")
) -> dict:
    """Dig the flat tensor dict out of the usual training wrappers and strip DataParallel prefixes."""
    for key in wrappers:
        if key in state and isinstance(state[key], dict):
            state = state[key]
            break
    for prefix in _PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def detect_architecture(state: dict) -> ModelSpec:
    """The first registry entry whose network loads ``state`` strictly (same keys and shapes).

    Several entries share an architecture (SAM ViT-B and MedSAM): the first registered wins; pass
    ``architecture=`` to :func:`load_model` to choose the preprocessing of another.
    """
    wanted = {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}
    for spec in MODELS.values():
        with torch.device("meta"):
            net = SamNetwork(spec.encoder)
        have = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        if have == wanted:
            return spec
    sample = ", ".join(list(wanted)[:4])
    raise ValueError(
        f"this checkpoint matches none of the registered architectures ({', '.join(MODELS)}); its first keys "
        f"are {sample}. If it is a SAM-family model with another layout, name it with architecture=."
    )


def build_network(spec: ModelSpec, state: dict | None) -> SamNetwork:
    net = SamNetwork(spec.encoder)
    if state is not None:
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ValueError(
                f"checkpoint does not fit the {spec.name} architecture: {str(err)[:800]}"
            ) from None
    return net


def looks_like_path(text: str) -> bool:
    """Whether a ``--model`` value names a file: it holds a path separator, starts with ``.`` or ``~``,
    or has an extension. Anything else is a registry name and is only ever looked up in the registry.
    """
    seps = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    return any(ch in text for ch in seps) or text.startswith((".", "~")) or bool(Path(text).suffix)


def check_finite(state: dict, path) -> None:
    """``ValueError`` naming the first tensor with NaN or inf values (such weights give empty masks)."""
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            bad = int((~torch.isfinite(value)).sum())
            raise ValueError(
                f"refusing checkpoint {path}: tensor {key!r} holds {bad} NaN/inf value(s); these weights "
                f"cannot give masks (a diverged training run or a damaged file)"
            )


def resolve_weights(
    name_or_path: str | os.PathLike, *, architecture: str | None = None, cache_dir=None
) -> tuple[ModelSpec, Path, dict, str]:
    """(spec, checkpoint path, checked state dict, sha256 of the file loaded) for a name or a path.

    A registry name resolves only in the registry (its pinned hash verified); a path must look like one
    (:func:`looks_like_path`), so a file in the working directory named like a model is never loaded in
    its place. ``ValueError`` for unknown names, missing, empty, damaged or non-finite checkpoints.
    """
    text = str(name_or_path)
    if isinstance(name_or_path, str) and not looks_like_path(text):
        spec = get_spec(text)  # ValueError for an unknown name, listing the registered ones
        path = fetch_checkpoint(spec, cache_dir)
        state = unwrap_state_dict(load_state_dict(path), spec.state_dict_wrappers)  # verified by fetch
        digest = spec.checkpoint.sha256 or sha256_file(path)
    else:
        path = Path(text).expanduser()
        if not path.is_file():
            raise ValueError(
                f"{text!r} is neither a registered model ({', '.join(MODELS)}) nor an existing "
                f"checkpoint file"
            )
        digest = sha256_file(path)
        from napari_sam.finetune.artifact import verify as verify_finetune

        sidecar = verify_finetune(path, digest)  # a napari-sam fine-tune: weights and sidecar must match
        if sidecar is not None and architecture is None:
            architecture = sidecar.get("architecture")
        state = unwrap_state_dict(load_state_dict(path))
        spec = get_spec(architecture) if architecture else detect_architecture(state)
    check_finite(state, path)
    return spec, path, state, digest


def check_model(name_or_path: str | os.PathLike = DEFAULT_MODEL, *, architecture: str | None = None) -> str:
    """Check that ``name_or_path`` loads (without building the network); returns its sha256."""
    spec, _, state, digest = resolve_weights(name_or_path, architecture=architecture)
    with torch.device("meta"), warnings.catch_warnings():
        # a strict load onto meta tensors checks every key and shape; that it copies nothing is the point
        warnings.filterwarnings("ignore", message=".*copying from a non-meta parameter", category=UserWarning)
        build_network(spec, state)
    return digest


def load_model(
    name_or_path: str | os.PathLike = DEFAULT_MODEL,
    device: str = "auto",
    *,
    architecture: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    precision: str = "auto",
    compile: bool = False,
    backend: str = "auto",
) -> SamModel:
    """Load a SAM-family model.

    Parameters
    ----------
    name_or_path
        A registry name (``lite_medsam``, ``sam_vit_b``, ``sam_vit_l``, ``sam_vit_h``,
        ``mobilesam_vit_t``, ``medsam_vit_b``) or a checkpoint file (``.pth``/``.pt``/``.safetensors``)
        of one of those architectures, e.g. a micro-sam fine-tune. A string without a path separator or
        extension is always a registry name (write ``./name`` for a file called ``name``).
    device
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``.
    architecture
        For a file: the registry entry whose architecture and preprocessing it uses; detected from the
        state dict's keys and shapes when omitted.
    cache_dir
        Checkpoint cache (default ``$NAPARI_SAM_CACHE`` or ``~/.cache/napari-sam``).
    precision
        The image encoder's precision: ``"auto"`` (bf16 where the hardware computes in bf16 faster:
        CPUs with AMX, CPUs with AVX-512 BF16 where bf16 products measure faster than fp32, CUDA GPUs
        from Ampere on; fp32 elsewhere; :func:`napari_sam.models.device.auto_precision` says why),
        ``"fp32"``, or ``"bf16"``.
    compile
        Run the image encoder through ``torch.compile`` (fused kernels; on an H200 it takes ViT-B at 1024²
        from 165 to 293 images/s, see ``benchmarks/gpu_check.py``; on a CPU a copy with its weights
        frozen in, in the model's precision: LiteMedSAM bf16 0.16 → 0.13 s a window on two AVX-512 BF16
        cores, :mod:`napari_sam.models.cpu_compile`). The first batch compiles for 10–20 s, so it pays
        for batch jobs, not for an interactive session. It runs in torch (``backend="auto"`` picks torch
        then).
    backend
        What runs the image encoder: ``"torch"``, ``"openvino"`` (CPU only; the ``openvino`` package,
        ``pip install "napari-sam[openvino]"``), or ``"auto"``: OpenVINO where it was measured faster
        (LiteMedSAM in bf16 on CPUs with bf16 units, when it is installed), torch elsewhere. The encoder
        is exported to OpenVINO on its first window and kept in the cache (about 8 s, once per weights;
        :mod:`napari_sam.models.openvino_encoder`). ``model.backend`` says what was chosen.

    On a CPU, glibc's malloc is set to keep freed memory for reuse (once per process; 20 % off each
    encoder pass on two cores): see :mod:`napari_sam.models.host_memory`.

    Raises
    ------
    ValueError
        Unknown name, missing, empty, damaged, code-carrying or non-finite checkpoint, or weights that
        fit no registered architecture; ``precision="bf16"`` where the hardware has no bf16;
        ``backend="openvino"`` on a GPU, without the package, or with ``compile``.
    """
    dev = resolve_device(device)
    precision = resolve_precision(precision, dev)
    check_backend(backend, compile)
    if dev.type == "cpu":
        keep_freed_memory()  # the encoder's activations reused, not page-faulted in on every pass
    spec, path, state, digest = resolve_weights(name_or_path, architecture=architecture, cache_dir=cache_dir)
    net = build_network(spec, state).to(dev).prepare_for_inference()
    model = SamModel(net, spec, dev, path, digest, precision)
    if not compile and resolve_backend(backend, dev, precision, spec) == "openvino":
        model.backend = "openvino"
        model.openvino_encoder = OpenVinoEncoder(cache_dir_of(cache_dir))
    elif compile and dev.type == "cpu":  # weights frozen in, in the model's precision (cpu_compile)
        from napari_sam.models.cpu_compile import FrozenCompiled

        model.compiled_encoder = FrozenCompiled(torch.bfloat16 if precision == "bf16" else torch.float32)
    elif compile:
        model.compiled_encoder = torch.compile(net.image_encoder, dynamic=False)
    return model
