"""Batch labeling, the job description and planning: what to do (:class:`BatchConfig`), which inputs
(:func:`expand_inputs`) and, per input, a :class:`FileJob` checked and scaled in the calling process.

Files are opened lazily; a file that cannot be read or has unsupported dimensions gets its ``error`` set
instead of stopping the batch. The tasks that label the planes and the driver live in
:mod:`napari_sam.batch.run`, which re-exports the public names here.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_sam.batch.axes import check_axes, standard_view
from napari_sam.batch.axes import interpret_axes as interpret_axes  # re-exported
from napari_sam.io.images import IMAGE_SUFFIXES as IMAGE_SUFFIXES  # the one list, re-exported
from napari_sam.io.images import MAX_WHOLE_PLANE_PIXELS, image_stem, is_image_path
from napari_sam.io.labels import SUFFIX
from napari_sam.models import DEFAULT_MODEL


@dataclass
class BatchConfig:
    """What to do with every input.

    Attributes
    ----------
    outdir
        Output folder (created); on a cluster it must be visible to the workers.
    fmt
        ``"tiff"`` or ``"ome-zarr"``.
    task
        ``"auto"`` (segment everything) or ``"prompts"`` (the objects given in prompt files).
    model, device
        Registry name or checkpoint path; ``"auto"`` picks each worker's GPU when it has one.
    precision
        The image encoder's precision, ``"auto"`` (bf16 where the worker's hardware computes faster in
        it), ``"fp32"`` or ``"bf16"`` (see :func:`~napari_sam.models.loading.load_model`).
    backend
        What runs the image encoder: ``"auto"``, ``"torch"`` or ``"openvino"`` (see
        :func:`~napari_sam.models.loading.load_model`).
    compile
        Run the image encoder through ``torch.compile`` on each worker (pays on a GPU for long jobs: about
        20 s to compile, then fused kernels).
    auto_mode, params
        Automatic mode (None: the model's default) and parameter overrides (dict).
    link
        Stacks: link objects through planes into 3D labels (True) or label each plane on its own.
    min_link_iou
        Overlap needed to link objects of consecutive planes. None: as the core links them, for
        automatic stacks :func:`~napari_sam.automatic.stack.link_stack` (0.5 of the smaller object, an
        object missed on one plane keeps its id), for prompts an IoU of 0.3. A number: that overlap,
        measured the same way.
    prompts
        ``task="prompts"``: a prompt file for every input, or a folder with ``STEM.csv``,
        ``STEM.points.csv``, ``STEM.shapes.csv`` or ``STEM.json`` per input.
    overwrite
        Redo inputs whose outputs exist.
    axes
        One letter per axis of every input, in stored order (``"CYX"``, ``"ZCYX"``; see
        :mod:`~napari_sam.batch.axes`), for files that do not declare theirs; None: each file's declared
        axes (ImageJ, OME), else its shape.
    channel
        Segment only this channel (0-based) of multichannel inputs, e.g. the nuclei's; None: all of them
        (up to three) as one colour image.
    max_plane_pixels
        Planes are read whole: a file whose header claims larger planes is refused before anything is
        allocated (a guard against decompression bombs).
    """

    outdir: str | os.PathLike
    fmt: str = "tiff"
    task: str = "auto"
    model: str = DEFAULT_MODEL
    device: str = "auto"
    precision: str = "auto"
    backend: str = "auto"
    compile: bool = False
    auto_mode: str | None = None
    params: dict | None = None
    link: bool = True
    min_link_iou: float | None = None
    prompts: str | os.PathLike | None = None
    overwrite: bool = False
    max_plane_pixels: int = MAX_WHOLE_PLANE_PIXELS
    axes: str | None = None
    channel: int | None = None

    def __post_init__(self) -> None:
        from napari_sam.io.labels import FORMATS
        from napari_sam.models.openvino_encoder import check_backend

        self.outdir = Path(self.outdir)
        if self.fmt not in FORMATS:
            raise ValueError(f"unknown output format {self.fmt!r}; use one of {', '.join(FORMATS)}")
        if self.task not in ("auto", "prompts"):
            raise ValueError(f"task must be 'auto' or 'prompts', got {self.task!r}")
        if self.task == "prompts" and not self.prompts:
            raise ValueError("prompts mode needs prompt files: pass --prompts FILE_OR_FOLDER")
        check_backend(self.backend, self.compile)
        self.axes = check_axes(self.axes)
        if self.channel is not None and (
            isinstance(self.channel, bool) or int(self.channel) != self.channel or self.channel < 0
        ):
            raise ValueError(f"channel is a 0-based channel index (0, 1, ...); got {self.channel!r}")


@dataclass
class FileJob:
    """One input and where its outputs go (``error`` set when it cannot be processed)."""

    input: str
    output: Path
    summary: Path
    planes: int = 0
    stack: bool = False
    shape: tuple = ()
    channel_axis: int | None = None  # of one plane as standard_view shows it (2), or None
    axes: str | None = None  # the file's axes as read (None: by its shape)
    channel: int | None = None  # the one channel segmented, or None
    scaling: object = None
    prompts: dict | None = None  # plane -> {"points": [...], "boxes": [...]}
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.output.exists() and self.summary.exists()


@dataclass
class PlaneResult:
    """What a plane task returns: (H, W) labels, or the error that stopped it."""

    plane: int
    labels: np.ndarray | None
    seconds: float
    info: dict = field(default_factory=dict)
    error: str | None = None


@dataclass
class BatchReport:
    """The outcome of :func:`run_batch`."""

    done: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    planes: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed


# -- planning ---------------------------------------------------------------------------------------
def expand_inputs(inputs) -> list[Path]:
    """Files, glob patterns and folders (their TIFF/OME-TIFF/zarr/npy entries) → sorted unique paths.

    A pattern or folder that matches nothing raises ``ValueError``; a named file that does not exist is
    kept (it fails later with its own message, and the rest of the batch continues).
    """
    out: list[Path] = []
    for item in inputs:
        text = str(item)
        p = Path(text).expanduser()
        if p.is_dir() and not p.name.lower().endswith(".zarr"):
            found = sorted(q for q in p.iterdir() if is_image_path(q))
            if not found:
                raise ValueError(f"folder {p} holds no TIFF, OME-TIFF or zarr images")
            out.extend(found)
        elif any(ch in text for ch in "*?["):
            found = sorted(Path(m) for m in glob.glob(os.path.expanduser(text)))
            if not found:
                raise ValueError(f"the pattern {text!r} matches no files")
            out.extend(found)
        else:
            out.append(p)
    seen: dict[Path, None] = {}
    for p in out:
        seen.setdefault(p.resolve() if p.exists() else p, None)
    return list(seen)


def output_stem(path: Path) -> str:
    """The output name's stem: the input's name without its image suffix."""
    return image_stem(path)


def stack_channel_axis(job: FileJob) -> int | None:
    """The channel axis of ``job``'s whole view (its plane's, shifted by a plane axis), or None."""
    if job.channel_axis is None:
        return None
    return job.channel_axis + 1 if job.stack else job.channel_axis


def read_view(job: FileJob):
    """``job``'s input opened lazily and seen as (Y, X[, C]) or (P, Y, X[, C]) (:func:`standard_view`)."""
    from napari_sam.io.images import read_image

    return standard_view(read_image(job.input), job.axes, job.channel)[0]


def plan_file(path: Path, config: BatchConfig) -> FileJob:
    """Open ``path`` lazily, check it, compute its global scaling; errors are recorded, not raised."""
    stem = output_stem(path)
    job = FileJob(
        str(path), config.outdir / f"{stem}{SUFFIX[config.fmt]}", config.outdir / f"{stem}.labels.json"
    )
    try:
        with _local_reads():
            _plan_into(job, path, config)
    except Exception as err:  # any reader failure is this file's problem, not the batch's
        job.error = f"{type(err).__name__}: {err}" if not isinstance(err, ValueError) else str(err)
    return job


def _local_reads():
    """Reads of a file's chunks run in this thread, never on a distributed client (file handles do not
    travel).
    """
    import dask

    return dask.config.set(scheduler="synchronous")


def _plan_into(job: FileJob, path: Path, config: BatchConfig) -> None:
    from napari_sam.image.planes import make_source
    from napari_sam.io.images import check_whole_read, image_axes, read_image

    data = read_image(path)
    job.shape = tuple(int(s) for s in data.shape)
    job.axes, job.channel = config.axes or image_axes(path), config.channel
    view, job.stack, job.channel_axis = standard_view(data, job.axes, job.channel)
    plane_shape = tuple(view.shape[1:] if job.stack else view.shape)
    check_whole_read(path, plane_shape, data.dtype, config.max_plane_pixels)
    source = make_source(view, stack_axis=0 if job.stack else None, channel_axis=stack_channel_axis(job))
    job.planes = source.num_planes
    job.scaling = source.scaling
    if config.task == "prompts":
        from napari_sam.batch.prompt_files import prompts_for

        job.prompts = prompts_for(path, config.prompts, job.planes, output_stem(path))


def plan(inputs, config: BatchConfig) -> list[FileJob]:
    """A job per input (in order); two inputs with the same output name are an error."""
    jobs = [plan_file(p, config) for p in expand_inputs(inputs)]
    seen: dict[Path, str] = {}
    for job in jobs:
        if job.output in seen:
            raise ValueError(
                f"{job.input} and {seen[job.output]} would both write {job.output.name}; "
                f"rename one or label them into different output folders"
            )
        seen[job.output] = job.input
    return jobs
