"""Where the stages of each preview are computed: the core's
:class:`~napari_sam.prediction.progressive.ProgressivePrediction` is stepped on the main thread while its
next stage is decoder passes only, and in a worker for the rest; the latest prompts win.

With the embeddings the prompts need in memory, a stage is one decoder pass (tens of ms on a CPU) and
runs on the main thread, inside the layer edit: the prompt and its mask appear in the same frame and no
canvas redraw competes with it for the CPU. Everything slower goes to a worker and the viewer stays
responsive: a new object's zoom window (its quick answer, from the whole image or its tile, is shown
meanwhile and marked as provisional), clicks that a box-trained model turns into a box, and every
prompt on a machine where one decoder pass took longer than ``inline_budget_s``.

New prompts cancel the run of the old ones (it stops at its next step; a window it is encoding is
finished and reused, not encoded twice). A commit while the final answer is on its way takes that run
over: the final answer is committed when it arrives (:meth:`PreviewRuns.commit_when_final`) and new
prompts do not wait for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from napari_sam._napari._workers import report_error, start_worker

REFINING = "refining in a zoom window …"


class PreviewRuns:
    """Runs the annotator's predictions and hands each answer to ``show(prediction, prompts, note, final)``.

    Parameters
    ----------
    show
        Paints a prediction (main thread); ``final`` False for a provisional (quick) answer.
    status
        The widget's status line, for errors.

    Attributes
    ----------
    inline_budget_s
        Decoder passes faster than this run on the main thread.
    last_timing
        How the shown preview was made: ``predict_s``, ``preview_s`` (request → painted), ``inline``
        (main thread or worker), ``coarse`` (a quick answer while the zoom window is encoded).
    current
        The :class:`~napari_sam.prediction.progressive.ProgressivePrediction` of the prompts shown.
    worker
        The worker computing ``current``'s remaining stages, or None.
    """

    def __init__(self, show: Callable, status: Callable[[str], None]) -> None:
        self._show, self._status = show, status
        self.inline_budget_s = 0.1
        self.last_timing: dict = {}
        self.current = None
        self.worker = None
        self._prompts = None
        self._started = 0.0
        self._committing: dict = {}  # run → (worker, on_final): runs whose final answer is committed
        self._decode_estimate_s = 0.0  # the last decoder-only stage's duration

    @property
    def pending(self) -> bool:
        """Whether a commit waits for a final answer."""
        return bool(self._committing)

    @property
    def busy(self) -> bool:
        """Whether a preview is computed in a worker or a commit waits for its final answer."""
        return self.worker is not None or self.pending

    @property
    def refining(self) -> bool:
        """Whether the prompts shown wait for their final answer (the preview is provisional)."""
        return self.current is not None and not self.current.done

    def forget(self) -> None:
        """The prompts were cleared: stop their run; its answers still on their way are dropped."""
        if self.current is not None:
            self.current.cancel()
        self.current = self.worker = self._prompts = None

    def shutdown(self) -> None:
        """The widget goes away: stop every run, a commit waiting for its final answer included."""
        for run in list(self._committing):
            run.cancel()
        self._committing.clear()
        self.forget()

    def run(self, session, prompts, multimask: bool) -> None:
        """Predict ``prompts`` with ``session`` (an :class:`AnnotatorSession`) and show the answers."""
        self.forget()
        self._started = time.perf_counter()
        try:
            run = session.predict_progressive(prompts, multimask)
        except ValueError as err:
            report_error("predicting the mask", err, self._status)
            return
        self.current, self._prompts = run, prompts
        if run.ready and self._decode_estimate_s < self.inline_budget_s:
            try:
                stage = next(run)
            except StopIteration:
                return
            except Exception as err:  # noqa: BLE001 (shown to the user, as a worker's error would be)
                report_error("predicting the mask", err, self._status)
                self.current = None
                return
            if not stage.searched and not stage.encoded:
                self._decode_estimate_s = stage.seconds  # one decoder pass: fast enough here?
            self._shown(run, stage, inline=True)
            if run.done:
                return
        self.worker = self._start(run)

    def _start(self, run):
        """A worker that computes the remaining stages of ``run``: shown while ``run`` is the current
        run, committed when a commit took it over, dropped otherwise.
        """

        def job():
            yield from run

        def on_stage(stage) -> None:
            if run in self._committing:
                if stage.final:
                    on_final, _, prompts = self._committing.pop(run)
                    on_final(stage.prediction, prompts)
                return
            self._on_stage(run, stage)

        def finished() -> None:
            if self.worker is worker:
                self.worker = None
            if run in self._committing:  # it ended (stopped or failed) without a final answer
                _, on_failed, _ = self._committing.pop(run)
                on_failed("the refinement stopped before its final answer")

        worker = start_worker(
            job, what="predicting the mask", on_yield=on_stage, on_finish=finished, status=self._status
        )
        return worker

    def _on_stage(self, run, stage) -> None:
        if run is not self.current:
            return  # an answer to prompts that are gone
        if not stage.searched and not stage.encoded:
            self._decode_estimate_s = stage.seconds
        self._shown(run, stage, inline=False)

    def _shown(self, run, stage, inline: bool) -> None:
        self.last_timing = {
            "predict_s": stage.seconds,
            "preview_s": time.perf_counter() - self._started,
            "inline": inline,
            "coarse": not stage.final,
        }
        note = REFINING if not stage.final else getattr(run, "note", "")
        self._show(stage.prediction, self._prompts, note, stage.final)

    def commit_when_final(self, on_final: Callable, on_failed: Callable[[str], None]) -> bool:
        """If the prompts shown wait for their final answer, hand their run over to a commit: ``on_final
        (prediction, prompts)`` is called (main thread) when the final answer arrives, ``on_failed(why)``
        if it never does. Returns False (and does nothing) when no final answer is pending. The previews
        are free for new prompts at once.
        """
        run, prompts, worker = self.current, self._prompts, self.worker
        if run is None or run.done:
            return False
        self.current = self.worker = self._prompts = None
        self._committing[run] = (on_final, on_failed, prompts)
        if worker is None:  # computed inline so far (or its worker failed): the rest in a worker
            self._start(run)
        return True
