"""Segment the rest of an image "like the committed objects" of an annotation session.

The objects a user committed in the annotator are the examples (:mod:`~napari_sam.automatic.examples`):
their size range, polarity and a prototype of their embedding features steer the box proposals, and
the result holds only the *new* objects (those overlapping a committed one are dropped), to be
reviewed and then added with :meth:`~napari_sam.segmenter.Segmenter.commit_labels`.

>>> found = segment_like_committed(seg)                 # (H, W) int32, new objects 1..N on the plane in view
>>> seg.commit_labels(found)                            # keep them all, as committed objects
>>> found = segment_like_committed(seg, planes="all")   # a stack: (P, H, W), ids linked through z
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from skimage.segmentation import relabel_sequential

from napari_sam.embeddings.embedder import Cancelled


def _committed_planes(labels: np.ndarray) -> list[int]:
    return [z for z in range(labels.shape[0]) if labels[z].any()]


def _target_planes(segmenter, planes) -> tuple[list[int], bool]:
    """The plane indices to segment and whether the answer is a stack."""
    if not segmenter.is_stack:
        if planes not in (None, "all", 0, (0,), [0]):
            raise ValueError(f"this image is 2D: leave planes out (or None); got planes={planes!r}")
        return [0], False
    if planes is None:
        return [segmenter.plane], False
    if isinstance(planes, str):
        if planes != "all":
            raise ValueError(
                f"planes must be None (the plane in view), 'all', or plane indices; got {planes!r}"
            )
        return list(range(segmenter.num_planes)), True
    if isinstance(planes, (int, np.integer)):
        return [segmenter.plane_index(int(planes))], False
    return [segmenter.plane_index(int(p)) for p in planes], True


def segment_like_committed(
    segmenter,
    *,
    planes: int | Sequence[int] | str | None = None,
    params=None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    return_info: bool = False,
):
    """New objects like the session's committed ones, on one plane, some planes or the whole stack.

    Parameters
    ----------
    segmenter
        A :class:`~napari_sam.segmenter.Segmenter` with an image and at least one committed object.
        The search always uses box proposals (answered as box prompts, which every SAM-family model
        takes), since only they use the examples.
    planes
        None: the plane in view (2D images: the image); an index; a sequence of indices; or ``"all"``.
    params
        :class:`~napari_sam.automatic.box_mode.BoxModeParams` or a dict of overrides; settings given
        stay, the rest is learnt from the examples.
    progress
        ``progress(done, total)`` in units of planes × windows.
    should_stop
        Polled between windows; True stops with :class:`~napari_sam.embeddings.embedder.Cancelled`.
    return_info
        Also return a dict (per plane: objects found, windows encoded, what was learnt).

    Returns
    -------
    numpy.ndarray
        (H, W) int32 labels of the new objects only (1..N, 0 elsewhere and under committed objects) for
        one plane; (len(planes), H, W) for a sequence or ``"all"``, where an object found on
        neighbouring planes keeps one id (linked by overlap).
    """
    from napari_sam.automatic.everything import default_params, segment_everything
    from napari_sam.automatic.examples import describe_examples, params_like
    from napari_sam.automatic.merge import link_planes
    from napari_sam.automatic.summary import why_empty

    if segmenter.source is None:
        raise ValueError("the segmenter holds no image yet: call segmenter.set_image(image) first")
    committed = np.asarray(segmenter.labels)
    stack = committed if segmenter.is_stack else committed[None]
    with_objects = _committed_planes(stack)
    if not with_objects:
        raise ValueError(
            "no committed objects to learn from: commit a few typical objects first (click or box, then "
            "commit), then segment the rest like them"
        )
    targets, as_stack = _target_planes(segmenter, planes)
    out = np.zeros((len(targets), *stack.shape[1:]), dtype=np.int32)
    infos = []

    def report(k: int) -> Callable[[int, int], None]:
        def step(done: int, total: int) -> None:
            if should_stop is not None and should_stop():
                raise Cancelled(f"stopped after {k} of {len(targets)} planes")
            if progress is not None:
                progress(k * max(total, 1) + done, len(targets) * max(total, 1))

        return step

    for k, z in enumerate(targets):
        if should_stop is not None and should_stop():
            raise Cancelled(f"stopped after {k} of {len(targets)} planes")
        # the examples: the plane's own committed objects, else learn from the nearest plane that has
        # some (nothing is committed here to keep)
        source_plane = z if stack[z].any() else min(with_objects, key=lambda p: abs(p - z))
        if source_plane == z:
            plane_params, examples = params, stack[z]
        else:
            learnt = describe_examples(segmenter.source.plane(source_plane), stack[source_plane])
            plane_params, examples = params_like(default_params("boxes", params), learnt), None
        labels, info = segment_everything(
            segmenter=segmenter,
            plane=z,
            mode="boxes",
            params=plane_params,
            examples=examples,
            progress=report(k),
            return_info=True,
        )
        if source_plane != z:
            info["examples_from_plane"] = int(source_plane)
        out[k] = new_objects(labels, stack[z])
        info["new_objects"] = int(out[k].max(initial=0))
        if not info["new_objects"] and not info.get("empty"):
            info["empty"] = f"no objects: {why_empty(info)} (candidates on committed objects are left out)"
        info["plane"] = int(z)
        infos.append(info)
    if as_stack:
        if len(targets) > 1:
            out = link_planes(out, 0.5, measure="smaller", max_gap=1)
        result = out
    else:
        result = out[0]
    return (result, {"planes": infos}) if return_info else result


def new_objects(labels: np.ndarray, committed: np.ndarray) -> np.ndarray:
    """The objects of ``labels`` ((H, W) int) that are not committed yet, renumbered 1..N: one sharing more
    than a fifth of its area with the ``committed`` objects ((H, W) int) is dropped
    (:func:`~napari_sam.automatic.examples.keep_examples`), the others lose the committed pixels.
    """
    from napari_sam.automatic.examples import keep_examples

    labels = np.asarray(labels, dtype=np.int32)
    committed = np.asarray(committed)
    if committed.any():
        labels = np.where(committed > 0, 0, keep_examples(labels, committed))
    return relabel_sequential(labels)[0].astype(np.int32)
