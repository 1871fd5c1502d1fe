"""The prompts of one object, the one type every front end builds: points, boxes, a drawn mask, a plane.

Coordinates are napari's, in image pixels of one plane (pixel centres at integers): points (row, col),
boxes (min_row, min_col, max_row, max_col), max inclusive. :meth:`Prompts.build` is the one place
user prompts are checked; :meth:`Prompts.decoder_request` holds the rules that turn what was drawn
into what the mask decoder is asked; :meth:`Prompts.to_record` / :meth:`Prompts.from_record` are the
one saved record (older napari and notebook records still load).

Examples
--------
>>> p = Prompts.build(points=[(12, 30)], labels=[1], boxes=[(5, 20, 40, 60)])
>>> p.describe()
'1 point (1 positive) + 1 box'
>>> Prompts.from_record(p.to_record()) == p
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from napari_sam.geometry.coords import as_boxes_rc
from napari_sam.prompts.checks import (
    NEGATIVE,
    POSITIVE,
    check_boxes,
    check_labels,
    check_mask,
    check_plane,
    check_points,
    check_refines,
)

__all__ = ["DecoderRequest", "Prompts"]


@dataclass(frozen=True, eq=False)
class Prompts:
    """The prompts of one object on one plane (or, several boxes and nothing else: several objects).

    Build it with :meth:`build` (lists, tuples or arrays; the checks live there); the fields are
    always these canonical arrays.

    Attributes
    ----------
    points
        (N, 2) float64 (row, col) image pixels of the plane.
    labels
        (N,) int8: 1 for a positive point, 0 for a negative one.
    boxes
        (B, 4) float64 (min_row, min_col, max_row, max_col), max inclusive, oldest first.
    mask
        (H, W) bool drawn mask prompt (polygon, ellipse, brush), or None.
    plane
        Leading (non-spatial) indices of the plane in a stack, ``()`` for a 2D image.
    refines
        The id of a committed object these prompts correct (its mask is ``mask``, the points and boxes
        correct it; committing replaces that object's pixels under the same id), or None for a new
        object. See :meth:`napari_sam.segmenter.Segmenter.refine_prompts`.
    """

    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    mask: np.ndarray | None = None
    plane: tuple[int, ...] = ()
    refines: int | None = None

    def __post_init__(self) -> None:
        points = check_points(self.points)
        boxes = check_boxes(self.boxes)
        labels = check_labels(self.labels, len(points))
        mask = check_mask(self.mask)
        plane = check_plane(self.plane)
        object.__setattr__(self, "refines", check_refines(self.refines, mask))
        for name, value in (
            ("points", points),
            ("labels", labels),
            ("boxes", boxes),
            ("mask", mask),
            ("plane", plane),
        ):
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
            object.__setattr__(self, name, value)

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        points=None,
        labels=None,
        boxes=None,
        mask=None,
        plane=(),
        image_shape: Sequence[int] | None = None,
        refines: int | None = None,
    ) -> Prompts:
        """Check prompts given in any array-like form and return them as :class:`Prompts`.

        Parameters
        ----------
        points
            (N, 2) (row, col) pairs, a single (row, col), or None.
        labels
            (N,) 1 (positive) / 0 (negative) per point; default all positive.
        boxes
            (B, 4) (min_row, min_col, max_row, max_col), a single box flat, or None.
        mask
            (H, W) bool drawn mask, or None.
        plane
            Leading indices of the plane (an int for a single stack axis), ``()`` for 2D.
        image_shape
            (H, W) of the plane: points must lie on it, boxes are clipped to it (a box wholly outside
            is refused) and the mask must have this shape.
        refines
            The id of the committed object ``mask`` is the mask of, when these prompts correct it.

        Raises
        ------
        ValueError
            Naming the offending value: wrong shapes, NaN/inf, labels other than 0/1, max < min,
            points off the image, an empty mask.
        """
        prompts = cls(
            points=np.zeros((0, 2)) if points is None else points,
            labels=labels,
            boxes=np.zeros((0, 4)) if boxes is None else boxes,
            mask=mask,
            plane=plane,
            refines=refines,
        )
        return prompts if image_shape is None else prompts.on_image(image_shape)

    def on_image(self, image_shape: Sequence[int]) -> Prompts:
        """These prompts checked against a plane of shape (H, W): points must lie on it, boxes are
        clipped to it, the mask must have its shape; ``ValueError`` otherwise.
        """
        if len(image_shape) < 2:
            raise ValueError(f"image_shape must be (H, W); got {tuple(image_shape)}")
        h, w = (int(v) for v in image_shape[-2:])
        for r, c in self.points:
            if not (-0.5 <= r <= h - 0.5 and -0.5 <= c <= w - 0.5):
                raise ValueError(f"point (row={r:g}, col={c:g}) is outside the image of shape {(h, w)}")
        boxes = self.boxes
        if len(boxes):
            outside = (boxes[:, 0] > h - 0.5) | (boxes[:, 1] > w - 0.5) | (boxes[:, 2] < -0.5)
            outside |= boxes[:, 3] < -0.5
            if outside.any():
                raise ValueError(f"box {boxes[outside][0].tolist()} is outside the image of shape {(h, w)}")
            boxes = np.column_stack(
                [
                    boxes[:, 0].clip(0, h - 1),
                    boxes[:, 1].clip(0, w - 1),
                    boxes[:, 2].clip(0, h - 1),
                    boxes[:, 3].clip(0, w - 1),
                ]
            )
        if self.mask is not None and self.mask.shape != (h, w):
            raise ValueError(f"mask prompt of shape {self.mask.shape} does not match the image's {(h, w)}")
        if np.array_equal(boxes, self.boxes):
            return self
        return Prompts(self.points, self.labels, boxes, self.mask, self.plane, self.refines)

    # -- editing -----------------------------------------------------------------------------------
    def with_point(self, row: float, col: float, positive: bool = True) -> Prompts:
        """These prompts and one more point at (row, col)."""
        return Prompts(
            np.vstack([self.points, [[row, col]]]),
            np.append(self.labels, POSITIVE if positive else NEGATIVE),
            self.boxes,
            self.mask,
            self.plane,
            self.refines,
        )

    def with_box(self, box, replace: bool = True) -> Prompts:
        """These prompts with ``box`` (min_row, min_col, max_row, max_col): instead of the boxes there
        (``replace``, one box per object as in the notebook) or after them.
        """
        box = as_boxes_rc(box)
        boxes = box if replace else np.vstack([self.boxes, box])
        return Prompts(self.points, self.labels, boxes, self.mask, self.plane, self.refines)

    def with_mask(self, mask) -> Prompts:
        """These prompts with the drawn mask ``mask`` ((H, W) bool; None removes it, and with it the object
        it refines).
        """
        refines = self.refines if mask is not None else None
        return Prompts(self.points, self.labels, self.boxes, mask, self.plane, refines)

    def on_plane(self, plane) -> Prompts:
        """The same prompts on ``plane``."""
        return Prompts(self.points, self.labels, self.boxes, self.mask, plane, self.refines)

    def cleared(self) -> Prompts:
        """No prompts, on the same plane."""
        return Prompts(plane=self.plane)

    # -- reading -----------------------------------------------------------------------------------
    @property
    def is_empty(self) -> bool:
        """No point, no box and no drawn mask."""
        return len(self.points) == 0 and len(self.boxes) == 0 and self.mask is None

    @property
    def positive_points(self) -> np.ndarray:
        """(P, 2) the positive points."""
        return self.points[self.labels == POSITIVE]

    def describe(self) -> str:
        """A short human description, e.g. ``"2 points (1 positive, 1 negative) + 1 box"`` (not the
        plane: tables have a column for it).
        """
        parts = []
        n = len(self.points)
        if n:
            pos = int((self.labels == POSITIVE).sum())
            counts = [f"{k} {what}" for k, what in ((pos, "positive"), (n - pos, "negative")) if k]
            parts.append(f"{n} point{'s' if n > 1 else ''} ({', '.join(counts)})")
        if len(self.boxes):
            parts.append(f"{len(self.boxes)} box{'es' if len(self.boxes) > 1 else ''}")
        if self.mask is not None:
            if self.refines is None:
                parts.append(f"drawn mask ({int(self.mask.sum())} pixels)")
            else:
                parts.insert(0, f"refined object {self.refines} ({int(self.mask.sum())} pixels)")
        return " + ".join(parts) or "no prompts"

    def __eq__(self, other) -> bool:
        if not isinstance(other, Prompts):
            return NotImplemented
        same_mask = (self.mask is None and other.mask is None) or (
            self.mask is not None and other.mask is not None and np.array_equal(self.mask, other.mask)
        )
        return (
            same_mask
            and self.plane == other.plane
            and self.refines == other.refines
            and np.array_equal(self.points, other.points)
            and np.array_equal(self.labels, other.labels)
            and np.array_equal(self.boxes, other.boxes)
        )

    __hash__ = None  # arrays inside: not hashable

    def __repr__(self) -> str:
        return f"Prompts({self.describe()}{f' on plane {list(self.plane)}' if self.plane else ''})"

    # -- what the decoder is asked ----------------------------------------------------------------
    def decoder_request(self, strict: bool = False) -> DecoderRequest:
        """What :meth:`~napari_sam.segmenter.Segmenter.predict` decodes for these prompts, and a note.

        Rules (the same for every front end):

        * a drawn mask gives the object's box and the mask as SAM's mask prompt (with the points, if
          any); rectangles are then ignored;
        * a committed object being refined (``refines``): its mask is where the correction starts; the
          latest rectangle, if any, is the object's new box; the points correct it (how the model is
          asked: :func:`napari_sam.prediction.refine.refine_request`). Its mask alone is answered
          by itself;
        * with points, only the latest rectangle is used (points belong to one object);
        * several rectangles and no points are separate objects, decoded as one batch;
        * no prompt, or only negative points (nothing to segment), is a ``ValueError``.

        With ``strict`` (a Python caller's keyword arguments) the ignored prompts of the first two
        rules are a ``ValueError`` instead of a note.
        """
        if self.refines is not None:
            boxes = self.boxes[-1:] if len(self.boxes) else None
            note = (
                f"the latest of {len(self.boxes)} rectangles is the object's box"
                if len(self.boxes) > 1
                else ""
            )
            return DecoderRequest(
                self.points if len(self.points) else None,
                self.labels if len(self.points) else None,
                boxes,
                self.mask,
                note,
                refines=self.refines,
            )
        if self.is_empty:
            raise ValueError(
                "no prompts: give at least one point or a box (click on an object or draw a box)"
            )
        has_points = len(self.points) > 0
        if has_points and not (self.labels == POSITIVE).any() and not len(self.boxes) and self.mask is None:
            raise ValueError("only negative points: add a positive point or a box on the object")
        points = self.points if has_points else None
        labels = self.labels if has_points else None
        note = ""
        if self.mask is not None:
            if len(self.boxes):
                if strict:
                    raise ValueError("a drawn mask gives the object's box itself: pass the mask or a box")
                note = "a polygon/ellipse is drawn: rectangles are ignored"
            return DecoderRequest(points, labels, None, self.mask, note)
        boxes = self.boxes if len(self.boxes) else None
        if has_points and boxes is not None and len(boxes) > 1:
            if strict:
                raise ValueError(
                    f"points belong to one object, but {len(boxes)} boxes were given; pass one box"
                )
            note = f"points go with one box: using the latest of {len(boxes)} rectangles"
            boxes = boxes[-1:]
        return DecoderRequest(points, labels, boxes, None, note)

    def per_object(self) -> list[Prompts]:
        """The prompts of each object :meth:`decoder_request` decodes, in its order: one per rectangle
        when several rectangles and nothing else are drawn (each object records its own box), else
        these prompts (one object).
        """
        if len(self.boxes) > 1 and not len(self.points) and self.mask is None:
            return [Prompts(boxes=self.boxes[k : k + 1], plane=self.plane) for k in range(len(self.boxes))]
        return [self]

    # -- the saved record --------------------------------------------------------------------------
    def to_record(self) -> dict:
        """The JSON-friendly saved record (version 2, :mod:`napari_sam.prompts.records`)."""
        from napari_sam.prompts.records import to_record

        return to_record(self)

    @classmethod
    def from_record(cls, record: dict | None, image_shape: Sequence[int] | None = None) -> Prompts:
        """Prompts from a saved record: version 2 (:meth:`to_record`), or napari's or the notebook's earlier
        records (:mod:`napari_sam.prompts.records`). ``None`` or ``{}`` are no prompts.
        """
        from napari_sam.prompts.records import from_record

        return from_record(record, image_shape)


@dataclass(frozen=True, eq=False)
class DecoderRequest:
    """What the mask decoder is asked for one :class:`Prompts` (see :meth:`Prompts.decoder_request`).

    Attributes
    ----------
    points, labels
        (N, 2) float64 (row, col) and (N,) int8 1/0, or None.
    boxes
        (K, 4) float64: K objects (K = 1 with points), or None.
    mask
        (H, W) bool drawn mask: the object's box and low-res logits come from it
        (:func:`napari_sam.prediction.mask_prompt.mask_prompt`), or None.
    note
        What of the prompts was not used and why, for the user ("" when all was used).
    refines
        The committed object ``mask`` belongs to, when it is being refined (else None).
    """

    points: np.ndarray | None
    labels: np.ndarray | None
    boxes: np.ndarray | None
    mask: np.ndarray | None
    note: str = ""
    refines: int | None = None
