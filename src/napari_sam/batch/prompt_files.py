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


def _slot() -> dict[str, list]:
    return {"points": [], "boxes": [], "point_rows": [], "box_rows": []}


def _number(text) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")  # reported with its row by label_from_prompts, the other prompts go on


def read_prompt_file(path: str | os.PathLike) -> dict[int, dict[str, list]]:
    """Plane → {"points": [(row, col), ...], "boxes": [(min_row, min_col, max_row, max_col), ...],
    "point_rows": [...], "box_rows": [...]} where the ``*_rows`` name where each prompt came from
    ("pts.csv row 3") for messages about it.
    """
    p = Path(path)
    out: dict[int, dict[str, list]] = {}

    def add(plane: float, kind: str, value, where: str) -> None:
        plane = int(round(plane)) if np.isfinite(plane) else -1
        slot = out.setdefault(plane, _slot())
        slot[kind].append(tuple(_number(v) for v in value))
        slot["point_rows" if kind == "points" else "box_rows"].append(where)

    try:
        if p.suffix.lower() == ".json":
            doc = json.loads(p.read_text())
            for kind, n in (("points", 2), ("boxes", 4)):
                for i, item in enumerate(doc.get(kind, [])):
                    where = f"{p.name} {kind}[{i}]"
                    if len(item) == n:
                        add(0, kind, item, where)
                    elif len(item) == n + 1:
                        add(_number(item[0]), kind, item[1:], where)
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
        first_row: dict[str, int] = {}
        for i, r in enumerate(rows, start=2):  # row 1 is the header
            shapes.setdefault(r["index"], []).append([_number(r[a]) for a in axes])
            first_row.setdefault(r["index"], i)
        for index, verts in shapes.items():
            v = np.array(verts)
            plane = v[0, 0] if len(axes) == 3 else 0
            rc = v[:, -2:]
            box = (*rc.min(axis=0), *rc.max(axis=0)) if np.isfinite(rc).all() else (np.nan,) * 4
            add(plane, "boxes", box, f"{p.name} row {first_row[index]} (shape {index})")
    else:  # napari Points
        for i, r in enumerate(rows, start=2):
            v = [_number(r[a]) for a in axes]
            add(v[0] if len(axes) == 3 else 0, "points", v[-2:], f"{p.name} row {i}")
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
                where = ", ".join(d["point_rows"] + d["box_rows"])
                raise ValueError(
                    f"{where}: prompts on plane {plane}, but the image has {planes} plane(s) (0…{planes - 1})"
                )
            slot = merged.setdefault(plane, _slot())
            for key in slot:
                slot[key] += d[key]
    return merged


def usable_prompts(prompts: dict, shape: tuple[int, int]) -> tuple[list, list, list[str]]:
    """(points, boxes, warnings): the prompts of one plane that can be answered on an (H, W) plane.

    A point that is not a number or lies outside the plane, and a box that is not a number or lies
    entirely outside, is left out with a warning naming it and its row; boxes that reach over the edge
    are clipped. The other prompts are kept.
    """
    h, w = shape
    points, boxes, warnings = [], [], []
    rows = prompts.get("point_rows") or [f"point {i}" for i in range(len(prompts.get("points", [])))]
    for (r, c), where in zip(prompts.get("points", []), rows):
        if not (np.isfinite(r) and np.isfinite(c)):
            warnings.append(f"{where}: point ({r:g}, {c:g}) is not a number; skipped")
        elif not (-0.5 <= r <= h - 0.5 and -0.5 <= c <= w - 0.5):
            warnings.append(f"{where}: point (row={r:g}, col={c:g}) is outside the {h} × {w} image; skipped")
        else:
            points.append((r, c))
    rows = prompts.get("box_rows") or [f"box {i}" for i in range(len(prompts.get("boxes", [])))]
    for box, where in zip(prompts.get("boxes", []), rows):
        r0, c0, r1, c1 = box
        text = ", ".join(f"{v:g}" for v in box)
        if not np.isfinite(box).all():
            warnings.append(f"{where}: box ({text}) is not a number; skipped")
        elif r0 > h - 0.5 or c0 > w - 0.5 or r1 < -0.5 or c1 < -0.5 or r1 < r0 or c1 < c0:
            warnings.append(f"{where}: box ({text}) is outside the {h} × {w} image; skipped")
        else:
            boxes.append((max(r0, 0.0), max(c0, 0.0), min(r1, h - 1.0), min(c1, w - 1.0)))
    return points, boxes, warnings


def label_from_prompts(
    model, image: np.ndarray, prompts: dict, scaling=None, warnings=None, channel_axis: int | None = None
) -> np.ndarray:
    """(H, W) int32 labels of one plane ((H, W), (H, W, 3|4), or multichannel with ``channel_axis``): one
    object per box (decoded as one batch) and per point.

    Prompts that cannot be answered (see :func:`usable_prompts`) are skipped; one line per skipped
    prompt is appended to ``warnings`` (a list) when given.

    Objects are painted in prompt order (boxes, then points); later objects keep only unclaimed pixels.
    Box-trained models (``spec.auto_mode == "boxes"``) answer points poorly, so for them each point is
    turned into the box of the smallest classical proposal that holds it (or a box of the typical
    object size around it).
    """
    from napari_sam.segmenter import Segmenter

    h, w = np.shape(image)[:2]
    labels = np.zeros((h, w), dtype=np.int32)
    points, boxes, skipped = usable_prompts(prompts, (h, w))
    if warnings is not None:
        warnings.extend(skipped)
    if not boxes and not points:
        return labels
    seg = Segmenter(model)
    seg.set_image(image, scaling=scaling, channel_axis=channel_axis)
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
