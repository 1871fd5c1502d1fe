"""Batch labeling of many images on dask: one task per plane, one writer task per file.

Planning happens in the calling process (files are opened lazily, checked, and their global intensity
scaling computed from a strided sample); every plane is then labelled by a task that reads only its
plane, and when all planes of a file are done one task links them, writes the labels under a temporary
name and renames them into place, then writes the file's JSON summary the same way.

Tasks are pure functions of picklable arguments, so they run alike on local threads
(:class:`concurrent.futures.ThreadPoolExecutor`), a ``LocalCluster`` or a remote
``dask.distributed`` cluster; when a worker dies its tasks are simply rerun elsewhere, and since
outputs appear only by atomic rename, nothing is lost, half-written or written twice.

>>> report = run_batch(["stacks/*.tif"], BatchConfig(outdir="labels"))
>>> report.failed                      # [(input, message), ...]
"""
from __future__ import annotations

import functools
import glob
import os
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor
from concurrent.futures import wait as cf_wait
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import __version__
from .label_io import SUFFIX, remove_path, stale_temporaries, write_json_atomic, write_labels

IMAGE_SUFFIXES = (".tif", ".tiff", ".btf", ".ome.tif", ".ome.tiff", ".zarr", ".ome.zarr", ".npy")


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
    auto_mode, params
        Automatic mode (None: the model's default) and parameter overrides (dict).
    link
        Stacks: link objects through planes into 3D labels (True) or label each plane on its own.
    min_link_iou
        Overlap needed to link objects of consecutive planes.
    prompts
        ``task="prompts"``: a prompt file for every input, or a folder with ``STEM.csv``,
        ``STEM.points.csv``, ``STEM.shapes.csv`` or ``STEM.json`` per input.
    overwrite
        Redo inputs whose outputs exist.
    """

    outdir: str | os.PathLike
    fmt: str = "tiff"
    task: str = "auto"
    model: str = "lite_medsam"
    device: str = "auto"
    auto_mode: str | None = None
    params: dict | None = None
    link: bool = True
    min_link_iou: float = 0.3
    prompts: str | os.PathLike | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        from .label_io import FORMATS

        self.outdir = Path(self.outdir)
        if self.fmt not in FORMATS:
            raise ValueError(f"unknown output format {self.fmt!r}; use one of {', '.join(FORMATS)}")
        if self.task not in ("auto", "prompts"):
            raise ValueError(f"task must be 'auto' or 'prompts', got {self.task!r}")
        if self.task == "prompts" and not self.prompts:
            raise ValueError("prompts mode needs prompt files: pass --prompts FILE_OR_FOLDER")


@dataclass
class FileJob:
    """One input and where its outputs go (``error`` set when it cannot be processed)."""

    input: str
    output: Path
    summary: Path
    planes: int = 0
    stack: bool = False
    shape: tuple = ()
    channel_axis: int | None = None
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
def _is_image(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(IMAGE_SUFFIXES) and not name.startswith(".")


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
            found = sorted(q for q in p.iterdir() if _is_image(q))
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
    name = path.name.rstrip("/")
    for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr", ".tiff", ".tif", ".btf", ".zarr", ".npy"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def interpret_axes(shape: tuple[int, ...]) -> tuple[bool, int | None]:
    """(is_stack, channel_axis of a plane) for an array shape; ``ValueError`` when unsupported.

    Supported: (Y, X); (Y, X, 3|4) RGB(A); (Z, Y, X) stacks; (Z, Y, X, 3|4) RGB stacks.
    """
    if any(s == 0 for s in shape):
        raise ValueError(f"the image is empty (shape {shape})")
    nd = len(shape)
    if nd == 2:
        return False, None
    if nd == 3:
        return (False, None) if shape[-1] in (3, 4) else (True, None)
    if nd == 4 and shape[-1] in (3, 4):
        return True, None
    raise ValueError(f"unsupported dimensions {shape}: expected (Y, X), (Y, X, 3|4), (Z, Y, X) or (Z, Y, X, 3|4)")


def plan_file(path: Path, config: BatchConfig) -> FileJob:
    """Open ``path`` lazily, check it, compute its global scaling; errors are recorded, not raised."""
    stem = output_stem(path)
    job = FileJob(str(path), config.outdir / f"{stem}{SUFFIX[config.fmt]}", config.outdir / f"{stem}.labels.json")
    try:
        with _local_reads():
            _plan_into(job, path, config)
    except Exception as err:  # any reader failure is this file's problem, not the batch's
        job.error = f"{type(err).__name__}: {err}" if not isinstance(err, ValueError) else str(err)
    return job


def _local_reads():
    """Reads of a file's chunks run in this thread, never on a distributed client (file handles do not
    travel)."""
    import dask

    return dask.config.set(scheduler="synchronous")


def _plan_into(job: FileJob, path: Path, config: BatchConfig) -> None:
    from .io import read_image
    from .planes import make_source

    data = read_image(path)
    job.shape = tuple(int(s) for s in data.shape)
    job.stack, _ = interpret_axes(job.shape)
    source = make_source(data, stack_axis=0 if job.stack else None)
    job.planes = source.num_planes
    job.scaling = source.scaling
    if config.task == "prompts":
        from .automatic.prompt_files import prompts_for

        job.prompts = prompts_for(path, config.prompts, job.planes, output_stem(path))


def plan(inputs, config: BatchConfig) -> list[FileJob]:
    """A job per input (in order); two inputs with the same output name are an error."""
    jobs = [plan_file(p, config) for p in expand_inputs(inputs)]
    seen: dict[Path, str] = {}
    for job in jobs:
        if job.output in seen:
            raise ValueError(f"{job.input} and {seen[job.output]} would both write {job.output.name}; "
                             f"rename one or label them into different output folders")
        seen[job.output] = job.input
    return jobs


# -- tasks (run on workers) ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=2)
def worker_model(name: str, device: str):
    """The model, loaded once per worker process (and device); a GPU worker resolves ``auto`` to its GPU."""
    from .models.loading import load_model

    return load_model(name, device=device)


_MODEL_LOCK = threading.Lock()


def _model(config: BatchConfig):
    with _MODEL_LOCK:
        return worker_model(config.model, config.device)


def _read_plane(job: FileJob, plane: int):
    from .io import read_image

    data = read_image(job.input)
    with _local_reads():
        return np.asarray(data[plane] if job.stack else data)


def label_plane(job: FileJob, plane: int, config: BatchConfig) -> PlaneResult:
    """Label one plane of one file (automatic or from prompts); errors are returned, not raised."""
    t0 = time.perf_counter()
    try:
        model = _model(config)
        raw = np.asarray(_read_plane(job, plane))
        if config.task == "auto":
            from .automatic.everything import segment_everything

            labels, info = segment_everything(raw, model=model, mode=config.auto_mode, params=config.params,
                                              scaling=job.scaling, return_info=True)
            info = {k: v for k, v in info.items() if k in ("mode", "proposals", "windows", "decoded", "objects",
                                                           "encoded_windows", "parameters", "tiles")}
        else:
            from .automatic.prompt_files import label_from_prompts

            labels = label_from_prompts(model, raw, (job.prompts or {}).get(plane, {}), job.scaling)
            info = {"objects": int(labels.max(initial=0))}
        return PlaneResult(plane, labels, time.perf_counter() - t0, info)
    except Exception as err:
        return PlaneResult(plane, None, time.perf_counter() - t0, error=f"plane {plane}: {type(err).__name__}: {err}")


def finish_file(job: FileJob, config: BatchConfig, *results: PlaneResult) -> dict:
    """Assemble a file's planes, write its labels and summary atomically; returns the summary.

    On a plane error nothing is written and the summary dict carries ``error``.
    """
    from .automatic.merge import link_planes

    t0 = time.perf_counter()
    errors = [r.error for r in results if r.error]
    if errors:
        return {"input": job.input, "error": "; ".join(errors)}
    results = sorted(results, key=lambda r: r.plane)
    try:
        if job.stack:
            stacked = np.stack([r.labels for r in results])
            labels = link_planes(stacked, config.min_link_iou) if config.link else stacked
            axes = "ZYX"
        else:
            labels, axes = results[0].labels, "YX"
        model = _model(config)
        summary = {
            "input": job.input, "output": str(job.output), "format": config.fmt, "shape": list(job.shape),
            "planes": job.planes, "stack": job.stack,
            "labels": ("3d linked" if config.link else "2d per plane") if job.stack else "2d",
            "objects": int(len(np.unique(labels)) - (1 if (labels == 0).any() else 0)),
            "objects_per_plane": [int(r.info.get("objects", r.labels.max(initial=0))) for r in results],
            "seconds": float(sum(r.seconds for r in results) + time.perf_counter() - t0),
            "task": config.task, "mode": results[0].info.get("mode"), "model": model.name,
            "checkpoint_sha256": model.checkpoint_sha256, "device": str(model.device),
            "parameters": results[0].info.get("parameters", config.params or {}),
            "link_min_iou": config.min_link_iou if job.stack and config.link else None,
            "scaling": asdict(job.scaling) if job.scaling is not None else None,
            "napari_sam": __version__, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        write_labels(job.output, labels, config.fmt, axes=axes)
        write_json_atomic(job.summary, summary)
        return summary
    except Exception as err:
        remove_path(job.summary)
        return {"input": job.input, "error": f"writing failed: {type(err).__name__}: {err}"}


# -- executors ----------------------------------------------------------------------------------------
class LocalExecutor:
    """Tasks on local threads (the default: one thread, the model itself using every core)."""

    def __init__(self, threads: int = 1) -> None:
        self.pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="napari-sam")

    def submit(self, fn, *args, priority: int = 0):
        return self.pool.submit(fn, *args)

    def submit_after(self, fn, deps, *args, priority: int = 0):
        return self.pool.submit(fn, *args, *[d.result() for d in deps])

    @staticmethod
    def wait_first(pending):
        done, _ = cf_wait(pending, return_when=FIRST_COMPLETED)
        return done

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """Tasks on a ``dask.distributed`` client (a LocalCluster or a remote scheduler)."""

    def __init__(self, client, owns: tuple = ()) -> None:
        self.client = client
        self._owns = owns

    @classmethod
    def local_cluster(cls, workers: int, threads_per_worker: int = 1) -> DaskExecutor:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
        return cls(client, (client, cluster))

    @classmethod
    def connect(cls, address: str) -> DaskExecutor:
        from distributed import Client

        client = Client(address)
        return cls(client, (client,))

    def submit(self, fn, *args, priority: int = 0):
        return self.client.submit(fn, *args, pure=False, priority=priority)

    def submit_after(self, fn, deps, *args, priority: int = 0):
        return self.client.submit(fn, *args, *deps, pure=False, priority=priority)

    @staticmethod
    def wait_first(pending):
        from distributed import wait

        return wait(list(pending), return_when="FIRST_COMPLETED").done

    def close(self) -> None:
        for obj in self._owns:
            obj.close()


def make_executor(workers: int | None = None, scheduler: str | None = None, threads: int = 1):
    """Local threads by default; ``workers`` starts a LocalCluster; ``scheduler`` joins a cluster."""
    if scheduler:
        return DaskExecutor.connect(scheduler)
    if workers:
        return DaskExecutor.local_cluster(workers)
    return LocalExecutor(threads)


# -- driver -------------------------------------------------------------------------------------------
def run_batch(inputs, config: BatchConfig, *, executor=None, progress: bool = True,
              log=None, on_plane_done=None) -> BatchReport:
    """Label every input; see the module docstring.

    Parameters
    ----------
    inputs
        Files, glob patterns and folders.
    executor
        :class:`LocalExecutor` (default) or :class:`DaskExecutor`; closed here only if created here.
    progress
        Show a tqdm bar (planes, with ETA) on stderr.
    log
        Called with one line per finished, skipped or failed input (default: printed above the bar).
    on_plane_done
        Called as ``on_plane_done(done, total)`` after every plane (tests use it to interrupt runs).
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    log = log or (lambda line: tqdm.write(line, file=sys.stderr))
    Path(config.outdir).mkdir(parents=True, exist_ok=True)
    report = BatchReport()
    jobs = plan(inputs, config)
    todo: list[FileJob] = []
    for job in jobs:
        if job.error:
            report.failed.append((job.input, job.error))
            log(f"FAILED {job.input}: {job.error}")
        elif job.done and not config.overwrite:
            report.skipped.append(job.input)
            log(f"skip   {job.input}: {job.output.name} is already complete")
        else:
            for stale in stale_temporaries(job.output) + stale_temporaries(job.summary):
                remove_path(stale)
            remove_path(job.summary)  # an output without its summary is an interrupted one: redo it
            todo.append(job)
    total = sum(j.planes for j in todo)
    own = executor is None
    executor = executor or LocalExecutor()

    bar = tqdm(total=total, unit="plane", disable=not progress or total == 0, file=sys.stderr,
               desc="napari-sam label", dynamic_ncols=True)
    try:
        plane_futs: dict = {}
        remaining: dict[int, int] = {}
        by_file: dict[int, list] = {}
        for f, job in enumerate(todo):
            futs = [executor.submit(label_plane, job, p, config, priority=-f) for p in range(job.planes)]
            by_file[f] = futs
            remaining[f] = len(futs)
            for fut in futs:
                plane_futs[fut] = f
        pending = set(plane_futs)
        writers: dict = {}
        done_planes = 0
        say = log
        while pending:
            for fut in executor.wait_first(pending):
                pending.discard(fut)
                if fut in plane_futs:
                    f = plane_futs[fut]
                    remaining[f] -= 1
                    done_planes += 1
                    bar.update(1)
                    if on_plane_done is not None:
                        on_plane_done(done_planes, total)
                    if remaining[f] == 0:
                        w = executor.submit_after(finish_file, by_file[f], todo[f], config, priority=1)
                        writers[w] = f
                        pending.add(w)
                else:
                    job = todo[writers[fut]]
                    try:
                        summary = fut.result()
                    except Exception as err:  # the writer itself died (e.g. repeatedly killed workers)
                        summary = {"input": job.input, "error": f"{type(err).__name__}: {err}"}
                    if "error" in summary:
                        report.failed.append((job.input, summary["error"]))
                        say(f"FAILED {job.input}: {summary['error']}")
                    else:
                        report.done.append(summary)
                        report.planes += job.planes
                        say(f"done   {job.input} -> {job.output} ({summary['objects']} objects)")
    finally:
        bar.close()
        if own:
            executor.close()
    report.seconds = time.perf_counter() - t0
    return report
