"""Where each preview prediction runs: on the main thread when it is only a decoder pass, in a worker
when it needs more, one at a time, the latest prompts winning and late answers dropped.

With the embeddings the prompts need in memory, the prediction is one decoder pass (tens of ms on a
CPU) and runs on the main thread, inside the layer edit: the prompt and its mask appear in the same
frame and no canvas redraw competes with it for the CPU. Everything slower goes to a worker and the
viewer stays responsive: a prompt that needs a new embedding (the zoom window of a new object, a tile
of a large image), clicks that a box-trained model turns into a box (a batch of decoder passes), and
every prompt on a machine where one decoder pass took longer than ``inline_budget_s``. While a new zoom
window is encoded, a coarse preview from the whole image's (or the tile's) embedding is shown.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from napari_sam._napari._workers import report_error, start_worker

REFINING = "refining in a zoom window …"


class PreviewRuns:
    """Runs the annotator's predictions and hands each answer to ``show(prediction, prompts, note)``.

    Parameters
    ----------
    show
        Paints a prediction (main thread).
    again
        Called when a worker finishes while newer prompts were waiting: collect them and :meth:`run`.
    status
        The widget's status line, for errors.

    Attributes
    ----------
    inline_budget_s
        Decoder passes faster than this run on the main thread.
    last_timing
        How the shown preview was made: ``predict_s``, ``preview_s`` (request → painted), ``inline``
        (main thread or worker), ``coarse`` (whole image while a zoom window is encoded).
    """

    def __init__(self, show: Callable, again: Callable[[], None], status: Callable[[str], None]) -> None:
        self._show, self._again, self._status = show, again, status
        self.inline_budget_s = 0.1
        self.last_timing: dict = {}
        self.worker = None
        self.pending = False
        self._generation = 0  # bumped when the prompts are cleared: answers still in flight are dropped
        self._decode_estimate_s = 0.0  # the last decoder-only prediction's duration

    @property
    def busy(self) -> bool:
        """Whether a prediction runs in a worker or newer prompts wait for one."""
        return self.worker is not None or self.pending

    def defer(self) -> bool:
        """True (and the prompts are predicted when the running worker is done) while one runs."""
        if self.worker is not None:
            self.pending = True
            return True
        return False

    def forget(self) -> None:
        """The prompts were cleared: drop what is waiting and any answer still on its way."""
        self.pending = False
        self._generation += 1

    def run(self, session, prompts, multimask: bool) -> None:
        """Predict ``prompts`` with ``session`` (an :class:`AnnotatorSession`) and show the answer."""
        self.pending = False
        started = time.perf_counter()
        coarse_shown = False
        if self._decode_estimate_s < self.inline_budget_s and not session.needs_box_search(prompts):
            answered = self._inline(session, prompts, multimask, started)
            if answered == "final":
                return
            coarse_shown = answered == "coarse"
        self._in_worker(session, prompts, multimask, started, coarse_shown)

    def _shown(
        self, prediction, prompts, note: str, seconds: float, started: float, inline: bool, coarse: bool
    ) -> None:
        self.last_timing = {
            "predict_s": seconds,
            "preview_s": time.perf_counter() - started,
            "inline": inline,
            "coarse": coarse,
        }
        self._show(prediction, prompts, REFINING if coarse else note)

    def _inline(self, session, prompts, multimask: bool, started: float) -> str | None:
        """Decode on the main thread from embeddings in memory: "final" when that answered the prompts
        (or failed with a message to the user); "coarse" when the zoom window they need is not embedded
        yet and the whole image's (or its tile's) answer is shown meanwhile; None when neither is ready.
        """
        from napari_sam.embeddings.embedder import EmbeddingNotReady  # torch: not at plugin discovery

        for zoom in (True, False):
            t = time.perf_counter()
            try:
                prediction, note = session.predict(prompts, multimask, encode=False, zoom=zoom)
            except EmbeddingNotReady:
                continue
            except Exception as err:  # noqa: BLE001 (shown to the user, as a worker's error would be)
                report_error("predicting the mask", err, self._status)
                return "final"
            self._decode_estimate_s = time.perf_counter() - t
            self._shown(prediction, prompts, note, self._decode_estimate_s, started, True, not zoom)
            return "final" if zoom else "coarse"
        return None

    def _in_worker(self, session, prompts, multimask: bool, started: float, coarse_shown: bool) -> None:
        from napari_sam.embeddings.embedder import EmbeddingNotReady

        generation = self._generation

        def job():
            t, encoded = time.perf_counter(), session.segmenter.embeddings.encoded_count
            try:
                prediction, note = session.predict(prompts, multimask, encode=False)
            except EmbeddingNotReady:  # a new zoom window: a coarse answer first, then encode it
                if not coarse_shown:
                    try:
                        yield (
                            session.predict(prompts, multimask, encode=False, zoom=False)[0],
                            time.perf_counter() - t,
                        )
                    except EmbeddingNotReady:
                        pass
                prediction, note = session.predict(prompts, multimask)
            return (
                prediction,
                note,
                time.perf_counter() - t,
                session.segmenter.embeddings.encoded_count > encoded,
            )

        def coarse(result):
            if generation == self._generation:
                self._shown(result[0], prompts, "", result[1], started, False, True)

        def done(result):
            prediction, note, seconds, encoded = result
            if generation != self._generation:  # the prompts were cleared (or committed) meanwhile
                return
            if not encoded and not session.needs_box_search(prompts):
                self._decode_estimate_s = seconds  # one decoder pass: fast enough for the main thread?
            self._shown(prediction, prompts, note, seconds, started, False, False)

        def finished():
            self.worker = None
            if self.pending:
                self.pending = False
                self._again()

        self.worker = start_worker(
            job,
            what="predicting the mask",
            on_yield=coarse,
            on_return=done,
            on_finish=finished,
            status=self._status,
        )
