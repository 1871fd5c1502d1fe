"""The one saved record of an object's prompts (version 2), and the earlier records that still load.

Version 2::

    {"version": 2, "points": [[r, c], ...], "labels": [1, 0, ...],
     "boxes": [[r0, c0, r1, c1], ...], "mask": {"shape": [H, W], "counts": [...]} | None,
     "plane": [...]}

``mask`` is run-length encoded in row-major order, the first count a run of False. A correction of a
committed object (e.g. one loaded from an existing segmentation) also has ``"refines": id`` (its mask
is then the object's mask before the correction). Earlier records: napari's
``{"points": [[r, c]], "labels", "boxes", "plane"}`` and the notebook's
``{"points": [[r, c, label]], "box": [r0, c0, r1, c1] | None}`` (also the notebook widget's prompt as the
browser sends it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from napari_sam.prompts.checks import POSITIVE

if TYPE_CHECKING:
    from napari_sam.prompts.object_prompts import Prompts

RECORD_VERSION = 2
_V2_KEYS = {"version", "points", "labels", "boxes", "mask", "plane", "refines"}
_NAPARI_V1_KEYS = {"points", "labels", "boxes", "plane", "mask_pixels"}
_NOTEBOOK_V1_KEYS = {"points", "box"}


def to_record(prompts: Prompts) -> dict:
    """The JSON-friendly version-2 record of ``prompts`` (see the module's docstring)."""
    record = {
        "version": RECORD_VERSION,
        "points": prompts.points.tolist(),
        "labels": [int(v) for v in prompts.labels],
        "boxes": prompts.boxes.tolist(),
        "mask": None if prompts.mask is None else encode_mask(prompts.mask),
        "plane": list(prompts.plane),
    }
    if prompts.refines is not None:
        record["refines"] = prompts.refines
    return record


def from_record(record: dict | None, image_shape: Sequence[int] | None = None) -> Prompts:
    """Prompts from a saved record of any known version (checked against ``image_shape`` (H, W) when
    given); ``None`` or ``{}`` are no prompts. ``ValueError`` for an unknown or damaged record.
    """
    from napari_sam.prompts.object_prompts import Prompts

    if record is None:
        return Prompts()
    if not isinstance(record, dict):
        raise ValueError(f"a prompt record is a dict; got {type(record).__name__}")
    if "version" in record:
        return _from_v2(record, image_shape)
    keys = set(record)
    if "box" in keys or any(_is_sequence(p) and len(p) == 3 for p in record.get("points") or []):
        return _from_notebook_v1(record, image_shape)
    if keys <= _NAPARI_V1_KEYS:
        return Prompts.build(
            _none_if_empty(record.get("points")),
            _none_if_empty(record.get("labels")),
            _none_if_empty(record.get("boxes")),
            plane=tuple(record.get("plane") or ()),
            image_shape=image_shape,
        )
    raise ValueError(
        f"unknown prompt record keys {sorted(keys - _V2_KEYS)}: expected a napari-sam record "
        f"(keys {sorted(_V2_KEYS)})"
    )


def encode_mask(mask: np.ndarray) -> dict:
    """Run-length code of an (H, W) bool mask: ``{"shape": [H, W], "counts": [...]}``, row-major, the
    first count a run of False (0 when the first pixel is True).
    """
    flat = np.asarray(mask, dtype=bool).ravel()
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"shape": [int(v) for v in mask.shape], "counts": [int(c) for c in counts]}


def decode_mask(code: dict) -> np.ndarray:
    """The (H, W) bool mask of :func:`encode_mask`'s code; ``ValueError`` for a damaged one."""
    try:
        shape = tuple(int(v) for v in code["shape"])
        counts = np.asarray(code["counts"], dtype=np.int64)
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"a mask record is {{'shape': [H, W], 'counts': [...]}}; got {code!r}") from None
    if len(shape) != 2 or counts.ndim != 1 or (counts < 0).any() or counts.sum() != shape[0] * shape[1]:
        raise ValueError(f"mask record counts do not add up to its shape {shape}")
    values = np.arange(len(counts)) % 2 == 1
    return np.repeat(values, counts).reshape(shape)


def _from_v2(record: dict, image_shape) -> Prompts:
    version = record.get("version")
    if version != RECORD_VERSION:
        raise ValueError(
            f"prompt record version {version!r} is not known to this napari-sam (it reads version "
            f"{RECORD_VERSION}): update napari-sam"
        )
    unknown = set(record) - _V2_KEYS
    if unknown:
        raise ValueError(f"unknown prompt record keys {sorted(unknown)}; expected {sorted(_V2_KEYS)}")
    mask = record.get("mask")
    from napari_sam.prompts.object_prompts import Prompts

    return Prompts.build(
        _none_if_empty(record.get("points")),
        _none_if_empty(record.get("labels")),
        _none_if_empty(record.get("boxes")),
        mask=None if mask is None else decode_mask(mask),
        plane=tuple(record.get("plane") or ()),
        image_shape=image_shape,
        refines=record.get("refines"),
    )


def _from_notebook_v1(record: dict, image_shape) -> Prompts:
    unknown = set(record) - _NOTEBOOK_V1_KEYS
    if unknown:
        raise ValueError(f"unknown prompt keys {sorted(unknown)}; expected 'points' and 'box'")
    points, labels = [], []
    for p in record.get("points") or []:
        if not _is_sequence(p) or len(p) not in (2, 3):
            raise ValueError(f"a point is [row, col] or [row, col, label]; got {p!r}")
        points.append(p[:2])
        labels.append(p[2] if len(p) == 3 else POSITIVE)
    box = record.get("box")
    from napari_sam.prompts.object_prompts import Prompts

    return Prompts.build(
        points or None,
        labels or None,
        None if box is None else [box],
        image_shape=image_shape,
    )


def _is_sequence(value) -> bool:
    return isinstance(value, list | tuple | np.ndarray)


def _none_if_empty(value):
    return None if value is None or np.size(value) == 0 else value
