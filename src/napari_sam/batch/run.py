"""Batch labeling of many images on dask: one task per plane, one writer task per file.

Planning happens in the calling process (files are opened lazily, checked, and their global intensity
scaling computed from a strided sample); every plane is then labelled by a task that reads only its
plane, and when all planes of a file are done one task links them, writes the labels under a temporary
name and renames them into place, then writes the file's JSON summary the same way.

Tasks are pure functions of picklable arguments, so they run alike on local threads
(:class:`concurrent.futures.ThreadPoolExecutor`), a ``LocalCluster`` or a remote
``dask.distributed`` cluster; when a worker dies its tasks are simply rerun elsewhere, and since
outputs appear only by atomic rename, nothing is lost, half-written or written twice. Files are started
a few at a time and each is written as soon as its planes are done, so outputs appear one by one and a
run killed at any point keeps every file finished so far (a rerun skips them).

>>> report = run_batch(["stacks/*.tif"], BatchConfig(outdir="labels"))
>>> report.failed                      # [(input, message), ...]

This module holds the tasks and the driver; the job description and planning are in
:mod:`napari_sam.batch.plan`, the executors in :mod:`napari_sam.batch.executors`, and both are
re-exported here.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections import deque
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from napari_sam import __version__
from napari_sam.batch.executors import DaskExecutor, LocalExecutor, make_executor
from napari_sam.batch.plan import (
    IMAGE_SUFFIXES,
    BatchConfig,
    BatchReport,
    FileJob,
    PlaneResult,
    _local_reads,
    expand_inputs,
    interpret_axes,
    output_stem,
    plan,
    plan_file,
    read_view,
    stack_channel_axis,
)
from napari_sam.image.normalize import BlankImageError
from napari_sam.io.atomic import remove_path, stale_temporaries, write_json_atomic
from napari_sam.io.labels import write_labels

__all__ = [
    "IMAGE_SUFFIXES",
    "BatchConfig",
    "BatchReport",
    "DaskExecutor",
    "FileJob",
    "LocalExecutor",
    "PlaneResult",
    "expand_inputs",
    "finish_file",
    "interpret_axes",
    "label_plane",
    "make_executor",
    "output_stem",
    "plan",
    "plan_file",
    "check_model_for",
    "check_outdir",
    "run_batch",
    "worker_model",
]


# -- tasks (run on workers) ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=2)
def worker_model(
    name: str, device: str, precision: str = "auto", compile: bool = False, backend: str = "auto"
):
    """The model, loaded once per worker process (and device); a GPU worker resolves ``auto`` to its GPU."""
    from napari_sam.models.loading import load_model

    return load_model(name, device=device, precision=precision, compile=compile, backend=backend)


_MODEL_LOCK = threading.Lock()
PROMPT_LINK_IOU = 0.3  # prompted objects of neighbouring planes are one object at this IoU


def _model(config: BatchConfig):
    with _MODEL_LOCK:
        return worker_model(config.model, config.device, config.precision, config.compile, config.backend)


def _read_plane(job: FileJob, plane: int):
    data = read_view(job)
    with _local_reads():
        return np.asarray(data[plane] if job.stack else data)


def read_stack_task(job: FileJob, config: BatchConfig):
    """How an automatic stack is read, once for all its planes
    (:func:`~napari_sam.automatic.stack.read_stack`): a :class:`~napari_sam.automatic.stack.StackReading`,
    or None where the mode is not box proposals.
    """
    from napari_sam.automatic.everything import default_params, resolve_mode
    from napari_sam.automatic.stack import read_stack
    from napari_sam.image.planes import make_source

    model = _model(config)
    mode = resolve_mode(model, config.auto_mode)
    if mode != "boxes":
        return None
    with _local_reads():
        source = make_source(
            read_view(job), stack_axis=0, channel_axis=stack_channel_axis(job), scaling=job.scaling
        )
        reading, _ = read_stack(model, source, default_params(mode, config.params))
    return reading


def label_plane(job: FileJob, plane: int, config: BatchConfig, reading=None) -> PlaneResult:
    """Label one plane of one file (automatic or from prompts); errors are returned, not raised.

    ``reading``: an automatic stack's :class:`~napari_sam.automatic.stack.StackReading` (its settings and
    denoising are every plane's), or None.
    """
    t0 = time.perf_counter()
    try:
        model = _model(config)
        raw = np.asarray(_read_plane(job, plane))
        if config.task == "auto":
            from napari_sam.automatic.everything import segment_everything
            from napari_sam.image.normalize import prepare_image

            image, params = raw, config.params
            if reading is not None:  # the stack's reading: every plane segmented alike
                image = reading.plane(prepare_image(raw, channel_axis=job.channel_axis, scaling=job.scaling))
                params = reading.params
            labels, info = segment_everything(
                image,
                model=model,
                mode=config.auto_mode,
                params=params,
                channel_axis=None if reading is not None else job.channel_axis,
                scaling=job.scaling,
                return_info=True,
            )
            info = {
                k: v
                for k, v in info.items()
                if k
                in (
                    "mode",
                    "proposals",
                    "windows",
                    "decoded",
                    "objects",
                    "encoded_windows",
                    "parameters",
                    "tiles",
                )
            }
        else:
            from napari_sam.batch.prompt_files import label_from_prompts

            warnings: list[str] = []
            prompts = (job.prompts or {}).get(plane, {})
            labels = label_from_prompts(model, raw, prompts, job.scaling, warnings, job.channel_axis)
            info = {
                "objects": int(labels.max(initial=0)),
                "warnings": [f"plane {plane}: {w}" for w in warnings],
            }
        return PlaneResult(plane, labels, time.perf_counter() - t0, info)
    except BlankImageError as err:  # one blank plane in a stack: empty labels, said, not a failed file
        info = {"objects": 0, "warnings": [f"plane {plane}: {err}; its labels are left empty"]}
        return PlaneResult(plane, np.zeros(raw.shape[:2], np.int32), time.perf_counter() - t0, info)
    except Exception as err:
        return PlaneResult(
            plane, None, time.perf_counter() - t0, error=f"plane {plane}: {type(err).__name__}: {err}"
        )


def _link_overlap(config: BatchConfig) -> float:
    from napari_sam.automatic.stack import LINK_MIN_OVERLAP

    if config.min_link_iou is not None:
        return config.min_link_iou
    return LINK_MIN_OVERLAP if config.task == "auto" else PROMPT_LINK_IOU


def _link_measure(config: BatchConfig) -> str:
    from napari_sam.automatic.stack import LINK_MEASURE

    return LINK_MEASURE if config.task == "auto" else "iou"


def _link(stacked: np.ndarray, config: BatchConfig) -> np.ndarray:
    """A stack's per-plane labels linked into 3D: automatic stacks as the core links them
    (:func:`~napari_sam.automatic.stack.link_stack`), prompted objects by their IoU.
    """
    from napari_sam.automatic.merge import link_planes
    from napari_sam.automatic.stack import link_stack

    if config.task == "auto":
        return link_stack(stacked, _link_overlap(config))
    return link_planes(stacked, _link_overlap(config))


def finish_file(job: FileJob, config: BatchConfig, *results: PlaneResult) -> dict:
    """Assemble a file's planes, write its labels and summary atomically; returns the summary.

    On a plane error nothing is written and the summary dict carries ``error``.
    """
    t0 = time.perf_counter()
    errors = [r.error for r in results if r.error]
    warnings = [w for r in sorted(results, key=lambda r: r.plane) for w in r.info.get("warnings", [])]
    if errors:
        return {"input": job.input, "error": "; ".join(errors), "warnings": warnings}
    results = sorted(results, key=lambda r: r.plane)
    try:
        if job.stack:
            stacked = np.stack([r.labels for r in results])
            labels = _link(stacked, config) if config.link else stacked
            axes = "ZYX"
        else:
            labels, axes = results[0].labels, "YX"
        model = _model(config)
        summary = {
            "input": job.input,
            "output": str(job.output),
            "format": config.fmt,
            "shape": list(job.shape),
            "axes": job.axes,
            "channel": job.channel,
            "planes": job.planes,
            "stack": job.stack,
            "labels": ("3d linked" if config.link else "2d per plane") if job.stack else "2d",
            "objects": int(len(np.unique(labels)) - (1 if (labels == 0).any() else 0)),
            "objects_per_plane": [int(r.info.get("objects", r.labels.max(initial=0))) for r in results],
            "seconds": float(sum(r.seconds for r in results) + time.perf_counter() - t0),
            "task": config.task,
            "mode": results[0].info.get("mode"),
            "model": model.name,
            "checkpoint": str(model.checkpoint) if model.checkpoint is not None else None,
            "checkpoint_sha256": model.checkpoint_sha256,
            "device": str(model.device),
            "precision": model.precision,
            "backend": model.backend,
            "compiled": model.compiled_encoder is not None,
            "parameters": results[0].info.get("parameters", config.params or {}),
            "link_min_iou": _link_overlap(config) if job.stack and config.link else None,
            "link_measure": _link_measure(config) if job.stack and config.link else None,
            "scaling": asdict(job.scaling) if job.scaling is not None else None,
            "napari_sam": __version__,
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "warnings": warnings,
        }
        write_labels(job.output, labels, config.fmt, axes=axes)
        write_json_atomic(job.summary, summary)
        return summary
    except Exception as err:
        remove_path(job.summary)
        return {"input": job.input, "error": f"writing failed: {type(err).__name__}: {err}"}


# -- driver -------------------------------------------------------------------------------------------
def check_outdir(outdir: Path) -> None:
    """Create the output folder, or say in one line why it cannot be used (``ValueError``)."""
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"the output {out} is a file, not a folder; choose a folder with -o/--outdir")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create the output folder {out}: {err.strerror or err}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"the output folder {out} is not writable; choose another one with -o/--outdir")


def check_model_for(config: BatchConfig, executor) -> None:
    """Load (locally) or check (for a cluster) the model once, before any plane: a bad ``model`` is one
    ``ValueError`` instead of one failure per plane.
    """
    if isinstance(executor, LocalExecutor):
        _model(config)  # the workers are threads of this process: they reuse it
    else:
        from napari_sam.models.loading import check_model

        check_model(config.model)


def _triage(jobs: list[FileJob], config: BatchConfig, report: BatchReport, log) -> list[FileJob]:
    """The jobs to run; failed plans and complete outputs go to ``report``."""
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
    return todo


def run_batch(
    inputs,
    config: BatchConfig,
    *,
    executor=None,
    progress=True,
    log=None,
    on_plane_done=None,
    should_stop=None,
    files_in_flight: int | None = None,
    on_plane=None,
) -> BatchReport:
    """Label every input; see the module docstring.

    Files are started a few at a time (``files_in_flight``) and each is written as soon as its planes
    are done, so outputs appear one by one, memory holds the labels of a few files only, and an
    interrupted run keeps every finished file (a rerun skips them).

    Parameters
    ----------
    inputs
        Files, glob patterns and folders.
    executor
        :class:`LocalExecutor` (default) or :class:`DaskExecutor`; closed here only if created here.
    progress
        True: a tqdm bar (planes, with ETA) on stderr; False: none; a callable: called as
        ``progress(done_planes, total_planes)`` after every plane instead of the bar.
    log
        Called with one line per finished, skipped or failed input (default: printed above the bar).
    on_plane_done
        Called as ``on_plane_done(done, total)`` after every plane (tests use it to interrupt runs).
    should_stop
        Asked after every plane; when it answers True, unstarted planes are dropped, files being written
        are finished, and :class:`~napari_sam.embeddings.embedder.Cancelled` is raised.
    files_in_flight
        Files whose planes may be queued at once (default: the executor's ``slots`` + 1).
    on_plane
        Called as ``on_plane(input, plane, planes)`` after every plane, after ``progress``: the input
        file (as given to the job), the index of the plane just labelled and the file's number of planes
        (front ends show which file and plane the job is at).

    Raises
    ------
    ValueError
        The output folder cannot be used, the model cannot be loaded, or an input pattern matches nothing
        (before any plane is labelled).
    """
    from tqdm.auto import tqdm

    from napari_sam.embeddings.embedder import Cancelled

    t0 = time.perf_counter()
    callback = progress if callable(progress) else None
    log = log or (lambda line: tqdm.write(line, file=sys.stderr))
    check_outdir(config.outdir)
    own = executor is None
    executor = executor or LocalExecutor()
    report = BatchReport()
    bar = None
    try:
        check_model_for(config, executor)
        todo = _triage(plan(inputs, config), config, report, log)
        total = sum(j.planes for j in todo)
        bar = tqdm(
            total=total,
            unit="plane",
            disable=callback is not None or not progress or total == 0,
            file=sys.stderr,
            desc="napari-sam label",
            dynamic_ncols=True,
        )
        limit = max(1, files_in_flight or getattr(executor, "slots", 1) + 1)
        waiting = deque(range(len(todo)))
        plane_futs: dict = {}
        plane_of: dict = {}
        remaining: dict[int, int] = {}
        by_file: dict[int, list] = {}
        writers: dict = {}
        readers: dict = {}  # an automatic stack's reading task → its file
        pending: set = set()
        done_planes = 0

        def submit_planes(f: int, reading=None) -> None:
            job = todo[f]
            futs = [
                executor.submit(label_plane, job, p, config, reading, priority=-f) for p in range(job.planes)
            ]
            by_file[f], remaining[f] = futs, len(futs)
            for p, fut in enumerate(futs):
                plane_futs[fut] = f
                plane_of[fut] = p
            pending.update(futs)

        def admit() -> None:
            while waiting and len(by_file) + len(readers) < limit:
                f = waiting.popleft()
                if config.task == "auto" and todo[f].stack:  # read the stack once, then its planes
                    fut = executor.submit(read_stack_task, todo[f], config, priority=-f)
                    readers[fut] = f
                    pending.add(fut)
                else:
                    submit_planes(f)

        admit()
        while pending:
            for fut in executor.wait_first(pending):
                pending.discard(fut)
                if fut in readers:
                    f = readers.pop(fut)
                    try:
                        reading = fut.result()
                    except Exception as err:  # this file cannot be read as a stack: it fails alone
                        _fail(todo[f], f"reading the stack: {type(err).__name__}: {err}", report, log)
                        done_planes += todo[f].planes
                        bar.update(todo[f].planes)
                        if callback is not None:
                            callback(done_planes, total)
                        admit()
                        continue
                    submit_planes(f, reading)
                elif fut in plane_futs:
                    f = plane_futs.pop(fut)
                    remaining[f] -= 1
                    done_planes += 1
                    bar.update(1)
                    if callback is not None:
                        callback(done_planes, total)
                    plane = plane_of.pop(fut)
                    if on_plane is not None:
                        on_plane(str(todo[f].input), plane, todo[f].planes)
                    if on_plane_done is not None:
                        on_plane_done(done_planes, total)
                    if remaining[f] == 0:
                        w = executor.submit_after(finish_file, by_file[f], todo[f], config, priority=1)
                        writers[w] = f
                        pending.add(w)
                else:
                    f = writers.pop(fut)
                    _record(fut, todo[f], report, log)
                    by_file.pop(f, None)  # the planes' labels can go
                    admit()
            if should_stop is not None and pending and should_stop():
                executor.cancel([p for p in pending if p in plane_futs or p in readers])
                for w in [p for p in pending if p in writers]:  # files being written are finished
                    _record(w, todo[writers.pop(w)], report, log)
                raise Cancelled(
                    f"stopped after {done_planes} of {total} planes; {len(report.done)} finished file(s) "
                    f"are kept and a rerun labels the rest"
                )
    finally:
        if bar is not None:
            bar.close()
        if own:
            executor.close()
    report.seconds = time.perf_counter() - t0
    return report


def _record(fut, job: FileJob, report: BatchReport, log) -> None:
    """Put a writer's outcome in ``report`` and say it."""
    try:
        summary = fut.result()
    except Exception as err:  # the writer itself died (e.g. repeatedly killed workers)
        summary = {"input": job.input, "error": f"{type(err).__name__}: {err}"}
    for line in summary.get("warnings") or []:
        log(f"warning {job.input}: {line}")
    if "error" in summary:
        _fail(job, summary["error"], report, log)
    else:
        report.done.append(summary)
        report.planes += job.planes
        log(f"done   {job.input} -> {job.output} ({summary['objects']} objects)")


def _fail(job: FileJob, message: str, report: BatchReport, log) -> None:
    """Put a failed file in ``report`` and say it."""
    report.failed.append((job.input, message))
    log(f"FAILED {job.input}: {message}")
