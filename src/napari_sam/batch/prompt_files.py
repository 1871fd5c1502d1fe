"""Prompt files for batch labeling: napari's Points and Shapes CSV exports, or a small JSON form.

* Points CSV (napari Points layer, *Save selected layer*): columns ``index,axis-0,axis-1`` for a 2D
  image, ``index,axis-0,axis-1,axis-2`` for a stack (``axis-0`` is then the plane). Each point is one
  object (a positive click).
* Shapes CSV (napari Shapes layer): ``index,shape-type,vertex-index,axis-0,axis-1[,axis-2]``; every
  shape (rectangle, polygon, ellipse…) is one object prompted by the bounding box of its vertices.
* JSON: ``{"points": [[row, col] or [plane, row, col], ...], "boxes": [[min_row, min_col, max_row,
  max_col] or [plane, min_row, ...], ...]}``.

Coordinates are napari's data coordinates: (row, col) pixels, planes first.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

PROMPT_SUFFIXES = (".json", ".points.csv", ".shapes.csv", ".csv")


def _axes_columns(header: list[str]) -> list[str]:
    axes = sorted((h for h in header if h.startswith("axis-")), key=lambda h: int(h.split("-")[1]))
    if len(axes) not in (2, 3):
        raise ValueError(f"expected columns axis-0, axis-1[, axis-2]; found {header}")
    return axes


def read_prompt_file(path: str | os.PathLike) -> dict[int, dict[str, list]]:
    """Plane → {"points": [(row, col), ...], "boxes": [(min_row, min_col, max_row, max_col), ...]}."""
    p = Path(path)
    out: dict[int, dict[str, list]] = {}

    def add(plane: int, kind: str, value) -> None:
        out.setdefault(int(plane), {"points": [], "boxes": []})[kind].append(tuple(float(v) for v in value))

    try:
        if p.suffix.lower() == ".json":
            doc = json.loads(p.read_text())
            for kind, n in (("points", 2), ("boxes", 4)):
                for item in doc.get(kind, []):
                    if len(item) == n:
                        add(0, kind, item)
                    elif len(item) == n + 1:
                        add(int(item[0]), kind, item[1:])
                    else:
                        raise ValueError(
                            f"a {kind[:-1]} needs {n} or {n + 1} numbers (plane first), got {item}"
                        )
            return out
        with open(p, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read prompt file {p}: {err}") from None
    if not rows:
        return out
    header = list(rows[0])
    axes = _axes_columns(header)
    if "shape-type" in header:  # napari Shapes
        shapes: dict[str, list] = {}
        for r in rows:
            shapes.setdefault(r["index"], []).append([float(r[a]) for a in axes])
        for verts in shapes.values():
            v = np.array(verts)
            plane = int(round(v[0, 0])) if len(axes) == 3 else 0
            rc = v[:, -2:]
            add(plane, "boxes", (*rc.min(axis=0), *rc.max(axis=0)))
    else:  # napari Points
        for r in rows:
            v = [float(r[a]) for a in axes]
            add(int(round(v[0])) if len(axes) == 3 else 0, "points", v[-2:])
    return out


def prompts_for(
    image_path: str | os.PathLike, prompts: str | os.PathLike, planes: int, stem: str
) -> dict[int, dict[str, list]]:
    """The prompts of one input: ``prompts`` is a file (used for every input) or a folder holding
    ``STEM.json``, ``STEM.points.csv``, ``STEM.shapes.csv`` or ``STEM.csv``; all found are merged.
    """
    src = Path(prompts)
    if src.is_dir():
        files = [src / f"{stem}{suf}" for suf in PROMPT_SUFFIXES if (src / f"{stem}{suf}").exists()]
        if not files:
            raise ValueError(
                f"no prompt file for {Path(image_path).name} in {src} (looked for {stem}"
                f"{{{','.join(PROMPT_SUFFIXES)}}})"
            )
    elif src.exists():
        files = [src]
    else:
        raise ValueError(f"prompt file {src} does not exist")
    merged: dict[int, dict[str, list]] = {}
    for f in files:
        for plane, d in read_prompt_file(f).items():
            if not 0 <= plane < planes:
                raise ValueError(
                    f"{f.name} has prompts on plane {plane}, but the image has {planes} plane(s)"
                )
            slot = merged.setdefault(plane, {"points": [], "boxes": []})
            slot["points"] += d["points"]
            slot["boxes"] += d["boxes"]
    return merged


def label_from_prompts(model, image: np.ndarray, prompts: dict, scaling=None) -> np.ndarray:
    """(H, W) int32 labels of one plane: one object per box (decoded as one batch) and per point.

    Objects are painted in prompt order (boxes, then points); later objects keep only unclaimed pixels.
    Box-trained models (``spec.auto_mode == "boxes"``) answer points poorly, so for them each point is
    turned into the box of the smallest classical proposal that holds it (or a box of the typical
    object size around it).
    """
    from napari_sam.segmenter import Segmenter

    h, w = np.shape(image)[:2]
    labels = np.zeros((h, w), dtype=np.int32)
    boxes = prompts.get("boxes", [])
    points = prompts.get("points", [])
    if not boxes and not points:
        return labels
    seg = Segmenter(model)
    seg.set_image(image, scaling=scaling)
    if points and model.spec.auto_mode == "boxes":
        boxes = list(boxes) + [
            tuple(b) for b in points_to_boxes(seg.image, np.array(points, dtype=np.float64))
        ]
        points = []
    preds = []
    if boxes:
        preds.append(seg.predict(box=np.array(boxes, dtype=np.float64)))
    for pt in points:
        preds.append(seg.predict(points=[pt], labels=[1]))
    n = 0
    for pred in preds:
        for k in range(len(pred.crops)):
            m = pred.best_index(k)
            crop = pred.crops[k][m]
            r, c = pred.offsets[k]
            region = labels[r : r + crop.shape[0], c : c + crop.shape[1]]
            free = crop & (region == 0)
            if free.any():
                n += 1
                region[free] = n
    return labels


def points_to_boxes(image, points_rc: np.ndarray) -> np.ndarray:
    """(N, 4) boxes for (N, 2) points: the smallest proposal box holding each point, else a box of the
    typical object diameter centred on it. ``image`` is a prepared image.
    """
    from napari_sam.automatic.box_mode import gray_of
    from napari_sam.automatic.proposals import propose_boxes

    props = propose_boxes(gray_of(image))
    h, w = image.shape
    half = max(props.diameter, 8.0) * 0.6
    out = []
    for r, c in points_rc:
        b = props.boxes
        inside = (
            (b[:, 0] <= r) & (r <= b[:, 2]) & (b[:, 1] <= c) & (c <= b[:, 3]) if len(b) else np.zeros(0, bool)
        )
        if inside.any():
            area = (b[inside, 2] - b[inside, 0]) * (b[inside, 3] - b[inside, 1])
            out.append(b[inside][int(np.argmin(area))])
        else:
            out.append([max(r - half, 0), max(c - half, 0), min(r + half, h - 1), min(c + half, w - 1)])
    return np.array(out, dtype=np.float64).reshape(-1, 4)
