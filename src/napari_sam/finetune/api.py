"""``finetune``: adapt a SAM-family model to a user's annotated objects, on a CPU, in minutes."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from datetime import datetime, timezone

import numpy as np
import torch

from napari_sam.finetune import artifact
from napari_sam.finetune.augment import Variant, random_variants
from napari_sam.finetune.base_weights import (
    check_base,
    final_state,
    load_base,
    published_weights,
    reset_encoder,
    state_digest,
)
from napari_sam.finetune.data import (
    MIN_OBJECTS,
    check_enough,
    find_objects,
    split_objects,
    training_planes,
)
from napari_sam.finetune.report import TrainingData, phase_record, training_report
from napari_sam.finetune.samples import SampleSet, build_samples, typical_extent
from napari_sam.finetune.train import LoopSettings, Trainer, TrainingProgress, run_loop
from napari_sam.finetune.tuned_model import FinetunedModel
from napari_sam.geometry.windows import ZoomRule
from napari_sam.models import DEFAULT_MODEL
from napari_sam.models.loading import SamModel

EMBEDDING_SHARE = 0.4  # at most this share of the time budget goes to embedding augmented copies
EMBEDDING_LIMIT = 0.75  # embedding stops at this share of the budget (from the call's start); the rest trains
MIN_VAL_OBJECTS = 2  # held-out objects needed to validate on
MIN_TRAIN_OBJECTS = MIN_OBJECTS - MIN_VAL_OBJECTS


def _from_session(images, labels):
    """A :class:`~napari_sam.segmenter.Segmenter` stands for its image and committed objects."""
    source = getattr(images, "source", None)
    annotations = getattr(images, "annotations", None)
    if source is None or annotations is None or not hasattr(images, "predict"):
        return images, labels
    if labels is not None:
        raise ValueError("a session brings its own labels (its committed objects); leave labels out")
    data = source.data if source.is_stack else source.data[0]
    return data, annotations.labels


def _merge_sets(sets: list[SampleSet]) -> SampleSet:
    samples, search, embeddings, inputs, offset = [], [], [], [], 0
    for part in sets:
        for smp in part.samples:
            samples.append(dataclasses.replace(smp, window_index=smp.window_index + offset))
        for smp in part.search or []:
            search.append(dataclasses.replace(smp, window_index=smp.window_index + offset))
        offset += len(part.embeddings)
        embeddings.append(part.embeddings)
        if part.inputs is not None:
            inputs.append(part.inputs)
    merged_inputs = torch.cat(inputs) if inputs else None
    return SampleSet(samples, torch.cat(embeddings), merged_inputs, search=search if search else None)


def finetune(
    images,
    labels=None,
    base: str | os.PathLike | SamModel = DEFAULT_MODEL,
    *,
    minutes: float = 4.0,
    device: str = "auto",
    encoder_adapters: bool = False,
    adapter_rank: int = 4,
    val_fraction: float = 0.2,
    augment: int = 1,
    seed: int = 0,
    zoom: ZoomRule | bool = True,
    batch_size: int | None = None,
    learning_rate: float = 1e-4,
    max_epochs: int = 60,
    patience: int = 20,
    channel_axis: int | None = None,
    progress: Callable[[TrainingProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    out: str | os.PathLike | None = None,
    name: str | None = None,
) -> FinetunedModel:
    """Fine-tune ``base`` on annotated objects and return the adapted model.

    The mask decoder and prompt encoder are trained on frozen, cached embeddings of the windows the
    session answers each object from (zoom windows, tiles), with prompts simulated as users give them
    (jittered boxes, the square boxes a click is searched with, clicks and correction clicks for models
    that take points). Optionally low-rank adapters on the image encoder's attention are trained too.
    A share of the objects is held out: the box mIoU on them is measured before and during training,
    training stops early when it stops improving, and the best weights are kept (never worse than the
    base on the held-out objects).

    Parameters
    ----------
    images
        One image or a list: (H, W), (H, W, C), or stacks (P, H, W[, C]); numpy, dask, zarr or file paths.
        Or a :class:`~napari_sam.segmenter.Segmenter`: its image and committed objects.
    labels
        Integer instance labels of each image's (H, W) / (P, H, W) shape (arrays, paths or
        :class:`~napari_sam.annotations.Annotations`). All-zero planes of a stack are skipped.
    base
        A registered model name, a checkpoint path, or a loaded model (not modified).
    minutes
        Time budget for the whole call (loading, embedding and training). Embedding stops at 75 % of it:
        when the windows of all objects did not fit, the objects embedded by then are trained and
        validated on (``report["data"]["objects_not_embedded"]`` counts the others), and when fewer than
        6 training or 2 held-out objects were embedded a ``ValueError`` says so before any training.
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"``.
    encoder_adapters
        Also train rank-``adapter_rank`` LoRA adapters on the image encoder (slower; after the decoder).
    val_fraction
        Share of objects held out for validation (at least 2).
    augment
        Augmented copies of each training plane (random flip/rotation and intensity change), embedded
        while they fit in 40 % of the budget.
    seed
        Seeds the split, augmentations, prompts and batches.
    zoom
        The session's :class:`~napari_sam.geometry.windows.ZoomRule` (windows objects are seen through).
    batch_size, learning_rate, max_epochs, patience
        Loop settings (batch size default 8 on a CPU, 16 on a GPU; patience in evaluations).
    progress
        Called with a :class:`~napari_sam.finetune.train.TrainingProgress` while embedding and training.
    should_stop
        Polled between steps: True stops; the best model so far is returned (while embedding, before
        any training, :class:`~napari_sam.embeddings.embedder.Cancelled` is raised).
    out, name
        Also save the model into folder ``out``, or into the model cache as ``name``.

    Returns
    -------
    FinetunedModel
        The model (a :class:`~napari_sam.models.loading.SamModel`) with its :attr:`~FinetunedModel.report`.
    """
    started = time.monotonic()
    wall_start = datetime.now(timezone.utc)
    if minutes <= 0:
        raise ValueError(f"minutes must be positive; got {minutes}")
    images, labels = _from_session(images, labels)
    if labels is None:
        raise ValueError("labels are needed: one instance label image per image")
    planes, inputs = training_planes(images, labels, channel_axis=channel_axis)
    objects = find_objects(planes)
    check_enough(objects, MIN_OBJECTS)
    _check_outputs(out, name)
    check_base(base)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    train_objs, val_objs = split_objects(objects, val_fraction, rng)
    model = load_base(base, device)
    # torch's first optimizer imports its compiler (seconds on a busy CPU): paid here, before the embedding
    # phase, so that phase (which stops at its share of the budget) leaves the training its share
    torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])
    base_state = published_weights(model)
    if isinstance(zoom, bool):
        zoom = ZoomRule(enabled=zoom)
    deadline = started + 60.0 * minutes
    settings = LoopSettings(
        batch_size=batch_size or (16 if model.device.type != "cpu" else 8),
        learning_rate=learning_rate,
        max_epochs=max_epochs,
        patience=patience,
    )
    data = _embed_objects(
        model,
        planes,
        train_objs,
        val_objs,
        zoom=zoom,
        augment=augment,
        rng=rng,
        keep_inputs=encoder_adapters,
        started=started,
        minutes=minutes,
        objects=len(objects),
        progress=progress,
        should_stop=should_stop,
    )
    embedding_s = time.monotonic() - started

    model.network.train(False)
    trainer = Trainer(model, data.train, data.val, settings, rng)
    base_val = trainer.evaluate()
    t_train = time.monotonic()
    outcome, phases, encoder_changed = _train(
        model,
        trainer,
        data,
        settings,
        rng,
        base_val,
        base_state,
        deadline=deadline,
        adapter_rank=adapter_rank if encoder_adapters else None,
        started=started,
        progress=progress,
        should_stop=should_stop,
    )
    training_s = time.monotonic() - t_train

    state = final_state(model, base_state, encoder_changed)
    model.network.prepare_for_inference()
    model.network.mask_decoder._prepared_cache.clear()
    best_val = outcome.best_val  # never below the base: run_loop starts from it as the best so far
    parameters = {
        "minutes": minutes,
        "device": str(model.device),
        "precision": model.precision,  # what the decoder trained and validated in (bf16: autocast)
        "encoder_adapters": encoder_adapters,
        "adapter_rank": adapter_rank,
        "val_fraction": val_fraction,
        "augment": augment,
        "seed": seed,
        "zoom": dataclasses.asdict(zoom),
        "channel_axis": channel_axis,
        **dataclasses.asdict(settings),
    }
    times = {
        "started": wall_start.isoformat(timespec="seconds"),
        "embedding_s": round(embedding_s, 1),
        "training_s": round(training_s, 1),
        "total_s": round(time.monotonic() - started, 1),
    }
    report = training_report(
        model,
        inputs=inputs,
        planes=planes,
        objects=len(objects),
        data=data,
        parameters=parameters,
        base_val=base_val,
        best_val=best_val,
        phases=phases,
        encoder_changed=encoder_changed,
        times=times,
        stopped_by=outcome.stopped_by,
    )
    result = FinetunedModel(
        network=model.network,
        spec=model.spec,
        device=model.device,
        checkpoint=None,
        checkpoint_sha256="finetune-" + state_digest(state),
        precision=model.precision,
        backend=model.backend,  # the encoder runs as it ran for the training embeddings
        openvino_encoder=model.openvino_encoder,
        report=report,
        state=state,
    )
    if progress is not None:
        elapsed = time.monotonic() - started
        progress(TrainingProgress("done", 1, 1, elapsed, 0.0, best_val.box, best_val.box, base_val.box))
    if out is not None or name is not None:
        result.save(out, name=name)
    return result


def _check_outputs(out, name) -> None:
    """Where the model is to be saved: one place at most, and a writable folder (before any training)."""
    if out is not None and name is not None:
        raise ValueError("give either out (a folder) or name (the model cache), not both")
    if out is not None:
        artifact.check_output_dir(out)
    if name is not None:
        artifact.check_output_dir(artifact.cache_folder(name))


def _embed_objects(
    model: SamModel,
    planes: list,
    train_objs: list,
    val_objs: list,
    *,
    zoom: ZoomRule,
    augment: int,
    rng: np.random.Generator,
    keep_inputs: bool,
    started: float,
    minutes: float,
    objects: int,
    progress: Callable[[TrainingProgress], None] | None,
    should_stop: Callable[[], bool] | None,
) -> TrainingData:
    """The first phase: embed the windows of the held-out and training objects, then augmented copies of
    the training planes while they fit in ``EMBEDDING_SHARE`` of the budget; embedding stops at
    ``EMBEDDING_LIMIT`` of it (:func:`_check_partial` says when too little was embedded).
    """
    embed_deadline = started + EMBEDDING_LIMIT * 60.0 * minutes

    def embed_progress() -> Callable[[int, int], None]:
        since = time.monotonic()

        def report(done: int, total: int) -> None:
            if progress is not None:
                now = time.monotonic()
                eta = (now - since) / max(done, 1) * (total - done)
                eta = max(0.0, min(eta, embed_deadline - now))  # embedding stops at its deadline
                progress(TrainingProgress("embedding", done, total, now - started, eta))

        return report

    def embed(groups) -> SampleSet:
        return build_samples(
            model,
            planes,
            groups,
            zoom=zoom,
            keep_inputs=keep_inputs,
            click_extent=click_extent,
            progress=embed_progress(),
            should_stop=should_stop,
            deadline=embed_deadline,
        )

    click_extent = typical_extent(train_objs + val_objs)  # as a session that committed them guesses
    t_embed = time.monotonic()
    identity = Variant()
    # held-out and training objects' windows in proportion (a window shared by both is embedded once)
    first = embed([(_interleaved(val_objs, train_objs), identity)])
    per_copy = time.monotonic() - t_embed
    val = first.subset(set(val_objs))
    train_parts = [first.subset(set(train_objs))]
    if first.left_out:
        _check_partial(first, val, train_parts[0], minutes, time.monotonic() - t_embed, objects)
        embedded = {smp.obj for smp in first.samples}
        val_objs = [o for o in val_objs if o in embedded]
        train_objs = [o for o in train_objs if o in embedded]
    variants_used = []
    for variant in random_variants(augment, rng) if augment > 0 and not first.left_out else []:
        if time.monotonic() - started + per_copy > EMBEDDING_SHARE * 60.0 * minutes:
            break
        train_parts.append(embed([(train_objs, variant)]))
        variants_used.append(dataclasses.asdict(variant))
    return TrainingData(
        train=_merge_sets(train_parts),
        val=val,
        train_objs=train_objs,
        val_objs=val_objs,
        windows=sum(len(part.embeddings) for part in train_parts),
        not_embedded=first.left_out,
        augmentations=variants_used,
    )


def _interleaved(val_objs: list, train_objs: list) -> list:
    """The held-out and training objects in the order their windows are embedded: plane by plane (in the
    order the planes first appear, held-out objects' planes first), and within a plane the held-out ones
    spread evenly among the training ones. A budget that runs out while embedding then leaves both in
    proportion: with the held-out objects first, 0.7 minutes on a slow 2-core CPU had embedded 22 of them
    and 5 to train on, too few to train (the napari walkthrough of a later session).
    """
    planes = list(dict.fromkeys(o.plane for o in [*val_objs, *train_objs]))
    order = []
    for plane in planes:
        held = [o for o in val_objs if o.plane == plane]
        train = [o for o in train_objs if o.plane == plane]
        keyed = [((i + 0.5) / len(held), 0, i) for i in range(len(held))]
        keyed += [((i + 0.5) / len(train), 1, i) for i in range(len(train))]
        order += [(held, train)[kind][i] for _, kind, i in sorted(keyed)]
    return order


def _train(
    model: SamModel,
    trainer: Trainer,
    data: TrainingData,
    settings: LoopSettings,
    rng: np.random.Generator,
    base_val,
    base_state: dict,
    *,
    deadline: float,
    adapter_rank: int | None,
    started: float,
    progress: Callable[[TrainingProgress], None] | None,
    should_stop: Callable[[], bool] | None,
):
    """The second phase: the decoder (half the remaining time when adapters follow), then with
    ``adapter_rank`` the encoder's low-rank adapters with it, kept only if they beat the decoder alone.
    Returns the outcome kept, the phases' records and whether the image encoder changed.
    """
    t_train = time.monotonic()
    decoder_deadline = deadline if adapter_rank is None else t_train + (deadline - t_train) / 2
    outcome = run_loop(
        trainer, decoder_deadline, base_val, progress=progress, should_stop=should_stop, started=started
    )
    phases = [{"phase": "decoder", **phase_record(outcome)}]
    if adapter_rank is None or outcome.stopped_by == "cancelled" or time.monotonic() >= deadline:
        return outcome, phases, False
    from napari_sam.finetune.lora import add_adapters, merge_adapters

    params = add_adapters(model.network.image_encoder, rank=adapter_rank)
    trainer = Trainer(model, data.train, data.val, settings, rng, adapter_params=params)
    second = run_loop(
        trainer, deadline, outcome.best_val, progress=progress, should_stop=should_stop, started=started
    )
    encoder_changed = bool(second.best_adapters) and second.best_val.score > outcome.best_val.score
    phases.append({"phase": "encoder adapters + decoder", **phase_record(second)})
    if not encoder_changed:  # the adapters did not help: drop them, keep the decoder's best
        trainer.restore(outcome.best_state, {})
    merge_adapters(model.network.image_encoder)
    if not encoder_changed:
        reset_encoder(model, base_state)
    return (second if encoder_changed else outcome), phases, encoder_changed


def _check_partial(
    first: SampleSet, val: SampleSet, train: SampleSet, minutes: float, seconds: float, objects: int
) -> None:
    """Embedding stopped at its deadline: enough objects to train on what was embedded, or a ValueError
    that says what to change.
    """
    n_val, n_train = len({s.obj for s in val.samples}), len({s.obj for s in train.samples})
    if n_val >= MIN_VAL_OBJECTS and n_train >= MIN_TRAIN_OBJECTS:
        return
    done, total = len(first.embeddings), first.windows_total
    pace = (
        f"at this pace embedding all {total} windows takes about {seconds / done * total / 60.0:.1f} min"
        if done
        else f"not one of the {total} windows was embedded"
    )
    raise ValueError(
        f"the time budget ({minutes:g} min) is too small for this data: embedding stops at "
        f"{EMBEDDING_LIMIT:.0%} of it, and by then {done} of {total} windows held {n_train} training and "
        f"{n_val} held-out objects of {objects}; training needs at least {MIN_TRAIN_OBJECTS} and "
        f"{MIN_VAL_OBJECTS} ({pace}). Give more minutes, or fewer or smaller images (crop them to the "
        "annotated objects), or a GPU (device='cuda')."
    )
