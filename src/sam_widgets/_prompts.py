"""The widget's prompt state: one object's points and box, as synced with the browser.

A prompt is ``{"points": [[row, col, label], ...], "box": [min_row, min_col, max_row, max_col] | None}``
in image pixels (pixel centres at integers), label 1 = positive, 0 = negative.
"""

from __future__ import annotations

import math


def empty_prompt() -> dict:
    return {"points": [], "box": None}


def _number(value, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number; got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{what} must be finite; got {value!r}")
    return out


def normalise_prompt(prompt, image_shape) -> dict:
    """Check a prompt against an image of shape (H, W) and return it in canonical form.

    Points must lie on the image; a box is reordered to (min_row, min_col, max_row, max_col) and clipped
    to the image. Raises ``ValueError`` with the offending value otherwise.
    """
    if not isinstance(prompt, dict):
        raise ValueError(f"a prompt is a dict with 'points' and 'box'; got {type(prompt).__name__}")
    unknown = set(prompt) - {"points", "box"}
    if unknown:
        raise ValueError(f"unknown prompt keys {sorted(unknown)}; expected 'points' and 'box'")
    h, w = (int(v) for v in image_shape)
    points = []
    for p in prompt.get("points") or []:
        if len(p) not in (2, 3):
            raise ValueError(f"a point is [row, col] or [row, col, label]; got {p!r}")
        r, c = _number(p[0], "point row"), _number(p[1], "point col")
        label = int(p[2]) if len(p) == 3 else 1
        if label not in (0, 1):
            raise ValueError(f"point labels are 1 (positive) or 0 (negative); got {p[2]!r}")
        if not (-0.5 <= r <= h - 0.5 and -0.5 <= c <= w - 0.5):
            raise ValueError(f"point (row={r:g}, col={c:g}) is outside the image of shape {(h, w)}")
        points.append([r, c, label])
    box = prompt.get("box")
    if box is not None:
        if len(box) != 4:
            raise ValueError(f"a box is [min_row, min_col, max_row, max_col]; got {box!r}")
        r0, c0, r1, c1 = (_number(v, "box coordinate") for v in box)
        r0, r1 = sorted((min(max(r0, 0.0), h - 1.0), min(max(r1, 0.0), h - 1.0)))
        c0, c1 = sorted((min(max(c0, 0.0), w - 1.0), min(max(c1, 0.0), w - 1.0)))
        box = [r0, c0, r1, c1]
    return {"points": points, "box": box}


def prompt_arguments(prompt: dict) -> dict | None:
    """Keyword arguments for :meth:`napari_sam.Segmenter.predict`, or None for an empty prompt."""
    points = prompt.get("points") or []
    box = prompt.get("box")
    if not points and box is None:
        return None
    return {"points": [p[:2] for p in points] or None, "labels": [p[2] for p in points] or None, "box": box}


def describe_prompts(prompts: dict) -> str:
    """A short summary of an object's recorded prompts, e.g. ``"box + 2 points (1 negative)"``."""
    parts = []
    if prompts.get("box") is not None:
        parts.append("box")
    points = prompts.get("points") or []
    if points:
        negative = sum(1 for p in points if len(p) > 2 and p[2] == 0)
        text = f"{len(points)} point{'s' if len(points) > 1 else ''}"
        parts.append(text + (f" ({negative} negative)" if negative else ""))
    parts += [f"{k}: {v}" for k, v in prompts.items() if k not in ("box", "points")]
    return " + ".join(parts)
