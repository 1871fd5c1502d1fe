"""Committed objects: the label image, its object table and an undo history, shared by the front ends.

Saved as a folder (``labels.tif`` + ``objects.json``), written under a temporary name and renamed, so a
session saved in napari can be continued in a notebook and back. Each object keeps the record of the
prompts it was made from (:meth:`napari_sam.prompts.Prompts.to_record`, whichever front end committed
it); folders saved with the earlier napari or notebook prompt records load too.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from psygnal import Signal

from napari_sam.geometry.coords import mask_bbox
from napari_sam.io.atomic import atomic_path
from napari_sam.prompts import Prompts

FOLDER_VERSION = 2  # 2: prompt records of version 2 (Prompts.to_record); 1: the front ends' own records


def prompt_record(prompts: Prompts | dict | None) -> dict:
    """The saved record (version 2) of ``prompts``: a :class:`~napari_sam.prompts.Prompts`, a record of
    any version (:meth:`~napari_sam.prompts.Prompts.from_record`), or None / ``{}`` for none.
    """
    if not isinstance(prompts, Prompts):
        prompts = Prompts.from_record(prompts or None)
    return prompts.to_record()


@dataclass
class ObjectRecord:
    """One committed object. ``bbox`` is (min_row, min_col, max_row, max_col), max inclusive (over all
    its planes); ``area`` its pixel count. ``plane`` is the plane it was prompted on (stacks), ``planes``
    every plane it covers when it spans several (a propagated object), else None. ``prompts`` is the
    record of its prompts (:meth:`napari_sam.prompts.Prompts.to_record`).
    """

    id: int
    area: int
    bbox: tuple[int, int, int, int]
    plane: int | None = None
    score: float | None = None
    prompts: dict = field(default_factory=lambda: prompt_record(None))
    planes: list[int] | None = None

    def as_prompts(self) -> Prompts:
        """The prompts the object was made from."""
        return Prompts.from_record(self.prompts)

    def row(self) -> dict:
        """The object's row of :meth:`Annotations.table`."""
        r0, c0, r1, c1 = self.bbox
        return {
            "id": self.id,
            "plane": self.plane,
            "planes": None if self.planes is None else list(self.planes),
            "area": self.area,
            "min_row": r0,
            "min_col": c0,
            "max_row": r1,
            "max_col": c1,
            "score": self.score,
            "prompts": self.as_prompts().describe(),
        }


class Annotations:
    """Labels of committed objects over an image of shape (H, W), or (P, H, W) for a stack of P planes.

    Signals
    -------
    changed(int)
        Emitted after a commit (the new id), an undo (the removed id) or a load (0).
    """

    changed = Signal(int)

    def __init__(self, shape: tuple[int, ...]) -> None:
        if len(shape) not in (2, 3):
            raise ValueError(f"labels are (H, W) or (planes, H, W); got shape {shape}")
        self.labels = np.zeros(shape, dtype=np.int32)
        self.objects: list[ObjectRecord] = []
        # per commit: (id, parts), a part (plane, region slices, flat index in the region, old values)
        self._undo: list[tuple[int, list[tuple]]] = []
        self._next_id = 1

    @property
    def next_id(self) -> int:
        return self._next_id

    def _plane_view(self, plane: int | None) -> np.ndarray:
        if self.labels.ndim == 2:
            if plane not in (None, 0):
                raise ValueError(f"these labels have no planes; got plane={plane}")
            return self.labels
        if plane is None or not 0 <= plane < self.labels.shape[0]:
            raise ValueError(f"plane must be in [0, {self.labels.shape[0]}) for a stack; got {plane}")
        return self.labels[plane]

    def _part(self, mask: np.ndarray, plane: int | None, overwrite: bool) -> tuple | None:
        """Where ``mask`` goes on ``plane``: (plane, region, flat index, bbox), or None when every pixel is
        taken (``ValueError`` for a wrong shape or an empty mask).
        """
        mask = np.asarray(mask, dtype=bool)
        target = self._plane_view(plane)
        if mask.shape != target.shape:
            raise ValueError(f"mask shape {mask.shape} does not match the labels' {target.shape}")
        bbox = mask_bbox(mask)
        if bbox is None:
            raise ValueError("the mask is empty: nothing to commit")
        r0, c0, r1, c1 = bbox
        region = (slice(r0, r1 + 1), slice(c0, c1 + 1))
        sub = mask[region] if overwrite else mask[region] & (target[region] == 0)
        index = np.flatnonzero(sub)
        return None if index.size == 0 else (plane, region, index, bbox)

    def _write(self, parts: list[tuple], record_for) -> int:
        """Paint the new id into every part, record one undo step and the object; returns the id."""
        new_id = self._next_id
        undo = []
        for plane, region, index, _ in parts:
            target = self._plane_view(plane)
            view = target[region]
            flat = view.reshape(-1).copy()
            undo.append((plane, region, index, flat[index].copy()))
            flat[index] = new_id
            target[region] = flat.reshape(view.shape)
        boxes = np.array([p[3] for p in parts])
        bbox = (
            int(boxes[:, 0].min()),
            int(boxes[:, 1].min()),
            int(boxes[:, 2].max()),
            int(boxes[:, 3].max()),
        )
        self._undo.append((new_id, undo))
        self.objects.append(record_for(new_id, int(sum(p[2].size for p in parts)), bbox))
        self._next_id += 1
        self.changed.emit(new_id)
        return new_id

    def commit(
        self,
        mask: np.ndarray,
        *,
        plane: int | None = None,
        score: float | None = None,
        prompts: Prompts | dict | None = None,
        overwrite: bool = False,
    ) -> int:
        """Add ``mask`` ((H, W) bool) as a new object and return its id.

        Pixels already labelled keep their object unless ``overwrite``. An empty mask raises ``ValueError``.
        ``prompts`` (a :class:`~napari_sam.prompts.Prompts` or its record) are kept with the object.
        """
        record = prompt_record(prompts)
        part = self._part(mask, plane, overwrite)
        if part is None:
            raise ValueError("every pixel of the mask already belongs to another object")
        return self._write([part], lambda i, area, bbox: ObjectRecord(i, area, bbox, plane, score, record))

    def commit_planes(
        self,
        masks: dict[int, np.ndarray],
        *,
        plane: int | None = None,
        score: float | None = None,
        prompts: Prompts | dict | None = None,
        overwrite: bool = False,
    ) -> int:
        """Add one object spanning several planes of a stack: ``masks`` maps plane → (H, W) bool mask.

        The object gets one id on every plane (a 3D object, or one cell followed through time), and one
        :meth:`undo` removes it from all of them. Planes whose mask is empty or already taken are
        skipped; ``ValueError`` if none is left. ``plane`` is the plane it was prompted on (default the
        first).
        """
        if self.labels.ndim != 3:
            raise ValueError("commit_planes needs stack labels (planes, H, W); use commit for a 2D image")
        record = prompt_record(prompts)
        parts = []
        for p in sorted(masks):
            if not np.any(masks[p]):  # the object is not on this plane
                continue
            part = self._part(masks[p], int(p), overwrite)
            if part is not None:
                parts.append(part)
        if not parts:
            raise ValueError(
                "nothing to commit: every plane's mask is empty or already belongs to other objects"
            )
        planes = [p[0] for p in parts]
        seed = planes[0] if plane is None else int(plane)
        return self._write(
            parts, lambda i, area, bbox: ObjectRecord(i, area, bbox, seed, score, record, planes)
        )

    def undo(self) -> int | None:
        """Remove the last committed object (restoring what it covered); its id, or None if none left."""
        if not self._undo:
            return None
        obj_id, parts = self._undo.pop()
        for plane, region, index, old in reversed(parts):
            target = self._plane_view(plane)
            tmp = target[region].copy().reshape(-1)
            tmp[index] = old
            target[region] = tmp.reshape(target[region].shape)
        self.objects = [o for o in self.objects if o.id != obj_id]
        self._next_id = obj_id
        self.changed.emit(obj_id)
        return obj_id

    def records(self) -> list[dict]:
        """The committed objects in full, as saved: dicts with id, area, bbox, plane, score, prompts
        (the record of :meth:`napari_sam.prompts.Prompts.to_record`) and planes.
        """
        return [asdict(o) for o in self.objects]

    def table(self) -> list[dict]:
        """One row per committed object, the same whichever front end committed it: id, plane, planes,
        area, min_row, min_col, max_row, max_col (max inclusive), score and prompts (described, e.g.
        ``"1 point (1 positive) + 1 box"``).
        """
        return [o.row() for o in self.objects]

    # -- persistence -------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``labels.tif`` and ``objects.json`` into folder ``path`` atomically; returns ``path``."""
        import tifffile

        path = Path(path)
        with atomic_path(path, folder=True) as tmp:
            tifffile.imwrite(tmp / "labels.tif", self.labels, compression="zlib")
            meta = {
                "format": "napari-sam annotations",
                "version": FOLDER_VERSION,
                "shape": list(self.labels.shape),
                "next_id": self._next_id,
                "objects": self.records(),
            }
            (tmp / "objects.json").write_text(json.dumps(meta, indent=1))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Annotations:
        """Read a folder written by :meth:`save` (the undo history starts empty); folders of earlier
        versions load too, their prompt records read by :meth:`napari_sam.prompts.Prompts.from_record`.
        """
        import tifffile

        path = Path(path)
        meta_file = path / "objects.json"
        if not meta_file.is_file():
            raise ValueError(f"{path} is not a napari-sam annotations folder (no objects.json)")
        meta = json.loads(meta_file.read_text())
        if int(meta.get("version", 1)) > FOLDER_VERSION:
            raise ValueError(
                f"{path} was saved by a newer napari-sam (folder version {meta['version']}): "
                "update napari-sam"
            )
        labels = tifffile.imread(path / "labels.tif")
        ann = cls(labels.shape)
        ann.labels[...] = labels
        for o in meta["objects"]:
            try:
                record = prompt_record(o.get("prompts"))
            except ValueError as err:
                raise ValueError(f"{path}: object {o.get('id')}: {err}") from None
            ann.objects.append(ObjectRecord(**{**o, "bbox": tuple(o["bbox"]), "prompts": record}))
        ann._next_id = int(meta.get("next_id", labels.max() + 1))
        ann.changed.emit(0)
        return ann
