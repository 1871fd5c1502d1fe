"""The notebook widget's prompts → masks: the current object's prompts (from the canvas or from Python),
its progressive answer sent to the browser, the candidate picked, commit and undo.

:class:`Prompting` is one part of :class:`~sam_widgets.widget.SamWidget` (which inherits these methods and
trait handlers); it works on the widget's traits (``prompt``, ``candidate``, ``scores``, ``status``, …),
its session (``_segmenter``), the answer shown (``_prediction``, ``_seq``, ``_note``) and the object being
edited (``_editing``).
"""

from __future__ import annotations

import traitlets

from napari_sam.prediction.clicks import (
    large_mask_note,
    new_object_prompts,
    new_object_text,
    starts_new_object,
)
from napari_sam.prediction.quality import candidate_scores, score_meaning
from napari_sam.prediction.result import Prediction
from napari_sam.prompts import Prompts
from sam_widgets._messages import prediction_message

_NO_PROMPT = {"points": [], "box": None}


def _browser_prompt(prompts: Prompts) -> dict:
    """The prompt as the canvas draws it: ``{"points": [[row, col, label], ...], "box": [4] | None}``
    (one box per object here; the browser sends the same form, read by ``Prompts.from_record``).
    """
    if len(prompts.boxes) > 1:
        raise ValueError(f"the notebook widget takes one box per object; got {len(prompts.boxes)}")
    points = [[r, c, int(v)] for (r, c), v in zip(prompts.points.tolist(), prompts.labels)]
    return {"points": points, "box": prompts.boxes[0].tolist() if len(prompts.boxes) else None}


class Prompting(traitlets.HasTraits):
    """Prompts → masks of the notebook widget (a mixin of :class:`~sam_widgets.widget.SamWidget`).

    It derives from ``HasTraits`` so that traitlets registers its ``observe`` / ``validate`` handlers (a
    plain mixin's handlers are called without their ``change``).
    """

    @property
    def prompts(self) -> Prompts:
        """The current object's :class:`~napari_sam.prompts.Prompts` (on the plane in view); while an
        object is edited, the clicks and box on its mask.
        """
        seg = self._segmenter
        plane = (seg.plane,) if seg.source is not None and seg.num_planes > 1 else ()
        drawn = Prompts.from_record(self.prompt).on_plane(plane)
        start = self._editing
        if start is None:
            return drawn
        return Prompts(drawn.points, drawn.labels, drawn.boxes, start.mask, start.plane, start.refines)

    def add_point(self, row: float, col: float, positive: bool = True) -> Prediction | None:
        """Add a positive (or negative) point at image pixel (row, col) and segment."""
        self.prompt = _browser_prompt(self.prompts.with_point(float(row), float(col), positive))
        return self._prediction

    def set_box(self, box) -> Prediction | None:
        """Set the box (min_row, min_col, max_row, max_col) of the current object and segment."""
        self.prompt = _browser_prompt(self.prompts.with_box(box))
        return self._prediction

    def segment(self, points=None, labels=None, box=None) -> Prediction | None:
        """Replace the prompt: ``points`` (N, 2) (row, col), ``labels`` (N,) 1/0, ``box`` (4,); segment."""
        self.prompt = _browser_prompt(Prompts.build(points, labels, box))
        return self._prediction

    def clear_prompts(self) -> None:
        """Forget the current prompt and its mask (and stop editing an object)."""
        editing = self._editing is not None
        self._stop_editing()
        if self.prompt != _NO_PROMPT:
            self.prompt = _NO_PROMPT
        elif editing:
            self._clear_prediction()

    @traitlets.validate("prompt")
    def _validate_prompt(self, proposal):
        """The browser's (or a caller's) prompt checked by ``Prompts`` and put in canonical form."""
        return _browser_prompt(Prompts.from_record(proposal["value"], image_shape=self.image_shape))

    @traitlets.observe("prompt")
    def _on_prompt(self, change) -> None:
        prompts = self.prompts
        if prompts.is_empty:
            self._clear_prediction()
            return
        if change is not None and self._click_starts_new_object(change["old"], prompts):
            return
        self.busy, self.status, self.error = True, "segmenting…", ""
        try:
            # the quick answer (whole image) goes to the browser at once, the zoom window's when ready
            for stage in self._segmenter.predict_progressive(prompts, multimask=self.multimask):
                self._show_stage(stage)
        except ValueError as err:
            self._clear_prediction()
            self.error = str(err)
            if not self._property_lock:  # a Python caller gets the error; the browser gets the status line
                raise
            return
        finally:
            self.busy = False

    def _click_starts_new_object(self, old_record: dict, prompts: Prompts) -> bool:
        """A positive click far outside the current mask (see
        :func:`napari_sam.prediction.clicks.starts_new_object`): commit the current mask as an object and
        prompt a new one with that click alone. Returns whether it did.
        """
        if self._prediction is None:
            return False
        shown = Prompts.from_record(old_record).on_plane(prompts.plane)
        if not starts_new_object(shown, self._prediction, prompts, self._selected()):
            return False
        try:
            ids, why = (
                [self._segmenter.commit(self._prediction, candidate=self._selected(), prompts=shown)],
                "",
            )
        except ValueError as err:  # e.g. every pixel already belongs to other objects: start afresh anyway
            ids, why = [], str(err)
        fresh = new_object_prompts(prompts)
        self._note = (fresh, new_object_text(ids, "Ctrl+Z", why))
        self.prompt = _browser_prompt(fresh)  # segments the new object (this handler, once more)
        return True

    def _show_stage(self, stage) -> None:
        """Send one answer of the progressive prediction (a rough one is marked ``"final": false``)."""
        pred = stage.prediction
        self._prediction = pred
        best = pred.best_index(0)
        self._seq += 1
        header, buffers = prediction_message(pred, self._seq, best)
        header["final"] = bool(stage.final)
        with self.hold_sync():
            shown = candidate_scores(pred, self._segmenter.model)
            self.scores = [s.value for s in shown]
            self.score_kind = shown[0].kind
            self.score_help = score_meaning(self._segmenter.model)
            self.candidate = best
        self.send(header, buffers)
        if stage.final:
            self._describe_candidate()
        else:
            self.status = "rough mask from the whole image — refining in a zoom window…"

    @traitlets.observe("candidate")
    def _describe_candidate(self, _change=None) -> None:
        pred = self._prediction
        if pred is not None and 0 <= self.candidate < pred.num_candidates:
            m = self.candidate
            score = candidate_scores(pred, self._segmenter.model)[m].label
            text = f"mask {m + 1}/{pred.num_candidates}: {score} — Enter commits"
            prompts = self.prompts
            if self._note is not None and self._note[0] == prompts:
                text = f"{self._note[1]}. {text}"
            areas = [o.area for o in self.annotations.objects]
            large = large_mask_note(prompts, int(pred.crops[0][m].sum()), areas)
            self.status = f"{text}. Note: {large}" if large else text

    def _resend_prediction(self) -> None:
        if self._prediction is not None:
            header, buffers = prediction_message(self._prediction, self._seq, self._selected())
            self.send(header, buffers)

    def _selected(self) -> int:
        m = self.candidate
        if self._prediction is None:
            raise ValueError("no mask yet: click on an object or give a prompt first")
        if not 0 <= m < self._prediction.num_candidates:
            return self._prediction.best_index(0)
        return m

    def _clear_prediction(self) -> None:
        self._prediction = None
        self._seq += 1
        with self.hold_sync():
            self.scores = []
            self.candidate = -1
        self.send({"type": "prediction", "seq": self._seq, "candidates": [], "selected": -1}, [])

    def commit(self) -> int:
        """Commit the selected mask as a new object (or, while editing one, as that object, under its id);
        returns its id and clears the prompt.
        """
        if self._prediction is None:
            raise ValueError("nothing to commit: click on an object (or call segment()) first")
        obj_id = self._segmenter.commit(self._prediction, candidate=self._selected(), prompts=self.prompts)
        self.clear_prompts()
        self.status = f"committed object {obj_id}"
        return obj_id

    def undo(self) -> int | None:
        """Remove the last committed object; its id, or None when there is nothing to undo."""
        obj_id = self._segmenter.undo()
        self.status = "nothing to undo" if obj_id is None else f"removed object {obj_id}"
        return obj_id
