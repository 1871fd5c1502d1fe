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
        # per commit: (id, parts, the object's record before, for a replacement, else None), a part
        # (plane, region slices, flat index in the region, old values)
        self._undo: list[tuple[int, list[tuple], ObjectRecord | None]] = []
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
        self._undo.append((new_id, undo, None))
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

    def replace(
        self,
        obj_id: int,
        mask: np.ndarray,
        *,
        plane: int | None = None,
        score: float | None = None,
        prompts: Prompts | dict | None = None,
        overwrite: bool = False,
    ) -> int:
        """Replace the pixels of object ``obj_id`` on ``plane`` by ``mask`` ((H, W) bool), keeping its id
        (a correction, e.g. of an object loaded with :meth:`from_labels`); returns ``obj_id``.

        Its pixels outside ``mask`` become background; pixels of other objects keep their object unless
        ``overwrite``. Its record takes ``score`` and ``prompts``. One :meth:`undo` restores the object
        exactly as it was (pixels and record). ``ValueError`` for an unknown id or an empty mask.
        """
        index_of = {o.id: i for i, o in enumerate(self.objects)}
        if obj_id not in index_of:
            raise ValueError(f"there is no object {obj_id} to replace (ids: {self._id_summary()})")
        before = self.objects[index_of[obj_id]]
        record = prompt_record(prompts)
        mask = np.asarray(mask, dtype=bool)
        target = self._plane_view(plane)
        if mask.shape != target.shape:
            raise ValueError(f"mask shape {mask.shape} does not match the labels' {target.shape}")
        if not mask.any():
            raise ValueError("the mask is empty: nothing to commit (undo the object to remove it)")
        new = mask if overwrite else mask & ((target == 0) | (target == obj_id))
        if not new.any():
            raise ValueError("every pixel of the mask already belongs to another object")
        old = target == obj_id
        bbox = mask_bbox(new | old)
        r0, c0, r1, c1 = bbox
        region = (slice(r0, r1 + 1), slice(c0, c1 + 1))
        view = target[region]
        flat = view.reshape(-1).copy()
        index = np.flatnonzero((new | old)[region])
        values = flat[index].copy()
        flat[np.flatnonzero(old[region] & ~new[region])] = 0
        flat[np.flatnonzero(new[region])] = obj_id
        target[region] = flat.reshape(view.shape)
        self._undo.append((obj_id, [(plane, region, index, values)], before))
        self.objects[index_of[obj_id]] = self._measured(obj_id, before, score, record)
        self.changed.emit(obj_id)
        return obj_id

    def _measured(self, obj_id: int, before: ObjectRecord, score, record: dict) -> ObjectRecord:
        """``before`` with its area, bbox and planes measured again from the labels."""
        where = self.labels == obj_id
        if self.labels.ndim == 3:
            planes = [int(p) for p in np.flatnonzero(where.any(axis=(1, 2)))]
            flat = where.any(axis=0)
        else:
            planes, flat = None, where
        return ObjectRecord(
            obj_id,
            int(where.sum()),
            mask_bbox(flat),
            before.plane,
            score,
            record,
            planes if planes is not None and len(planes) > 1 else None,
        )

    def _id_summary(self) -> str:
        ids = [o.id for o in self.objects]
        if not ids:
            return "none"
        return ", ".join(map(str, ids[:10])) + (f", … ({len(ids)} objects)" if len(ids) > 10 else "")

    def undo(self) -> int | None:
        """Undo the last commit: remove the object it added, or give a replaced object back its pixels and
        record (:meth:`replace`), restoring what it covered; its id, or None if none left.
        """
        if not self._undo:
            return None
        obj_id, parts, before = self._undo.pop()
        for plane, region, index, old in reversed(parts):
            target = self._plane_view(plane)
            tmp = target[region].copy().reshape(-1)
            tmp[index] = old
            target[region] = tmp.reshape(target[region].shape)
        if before is not None:
            self.objects = [before if o.id == obj_id else o for o in self.objects]
        else:
            self.objects = [o for o in self.objects if o.id != obj_id]
            self._next_id = obj_id
        self.changed.emit(obj_id)
        return obj_id

    @classmethod
    def from_labels(cls, labels: np.ndarray) -> Annotations:
        """Committed objects from an existing label image (a previous run, Cellpose, manual painting):
        (H, W), or (P, H, W) for a stack; one object per non-zero value, its id the value (an object on
        several planes of a stack is one object there). The objects have no prompts; they can be
        corrected (:meth:`replace`) and new ones committed after them. ``ValueError`` for labels that
        are not integers >= 0.
        """
        from scipy import ndimage as ndi

        arr = np.asarray(labels)
        if arr.ndim not in (2, 3):
            raise ValueError(f"labels are (H, W) or (planes, H, W); got shape {arr.shape}")
        if arr.dtype == bool:
            arr = arr.astype(np.uint8)
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"labels must hold integer ids; got dtype {arr.dtype}")
        top = int(arr.max()) if arr.size else 0
        if arr.size and int(arr.min()) < 0:
            raise ValueError("labels must be >= 0 (0 is background)")
        if top > np.iinfo(np.int32).max:
            raise ValueError(f"label ids up to {np.iinfo(np.int32).max} are supported; found {top}")
        ann = cls(arr.shape)
        ann.labels[...] = arr
        ids = np.unique(arr)
        ids = ids[ids > 0]
        compact = np.zeros(top + 1, dtype=np.int64) if top < 4 * max(arr.size, 1) else None
        if compact is not None:  # find_objects needs ids small enough for a table of their size
            compact[ids] = np.arange(1, ids.size + 1)
            dense = compact[arr]
        else:
            dense = np.searchsorted(ids, arr) + 1
            dense[arr == 0] = 0
        slices = ndi.find_objects(dense)
        areas = np.bincount(dense.ravel(), minlength=ids.size + 1)
        for k, (obj_id, sl) in enumerate(zip(ids, slices), start=1):
            rows, cols = sl[-2], sl[-1]
            bbox = (rows.start, cols.start, rows.stop - 1, cols.stop - 1)
            plane = planes = None
            if arr.ndim == 3:
                on = [int(p) for p in np.flatnonzero((dense[sl] == k).any(axis=(1, 2))) + sl[0].start]
                plane, planes = on[0], (on if len(on) > 1 else None)
            ann.objects.append(
                ObjectRecord(int(obj_id), int(areas[k]), bbox, plane, None, prompt_record(None), planes)
            )
        ann._next_id = top + 1
        ann.changed.emit(0)
        return ann

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
