"""Starting background jobs the napari way: ``thread_worker`` with napari's progress bar, errors shown
to the user as notifications (never swallowed), and cancellation through the progress callback.
"""

from __future__ import annotations

from collections.abc import Callable

from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_warning

NOTIFICATION_CHARS = 160  # a toast shows about this much before napari elides it
TOAST_SECONDS = 8.0  # our toasts close after this long (napari keeps a toast while its window is inactive)


class JobCancelled(Exception):
    """Raised inside a job's progress callback once the user pressed Cancel."""


def _is_cancel(err: BaseException) -> bool:
    from napari_sam.embeddings.embedder import Cancelled

    return isinstance(err, (JobCancelled, Cancelled))


def short_message(text: str, limit: int = NOTIFICATION_CHARS) -> str:
    """The first line of ``text``, cut at a word to at most ``limit`` characters ("…" where cut)."""
    lines = text.strip().splitlines() or [""]
    first = lines[0].strip()
    if len(first) <= limit and len(lines) == 1:
        return first
    if len(first) > limit - 1:
        cut = first[: limit - 1]
        first = cut.rsplit(" ", 1)[0] if " " in cut[limit // 2 :] else cut
    return first.rstrip(" ,;:") + "…"


def _expire_toast(message: str, seconds: float) -> None:
    """Close napari's toast showing ``message`` after ``seconds`` (later while the mouse is on it).

    napari starts a toast's own timer only while its window is active and stops it while newer toasts
    show, so an error could stay on the canvas for minutes. Main thread only; does nothing when napari
    shows no toast (no visible window, a notification level above this one).
    """
    from qtpy.QtCore import QThread, QTimer
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None or QThread.currentThread() is not app.thread():
        return

    def arm() -> None:
        for toast in app.allWidgets():
            label = getattr(toast, "message", None)
            if type(toast).__name__ != "NapariQtNotification" or getattr(toast, "_napari_sam_timer", None):
                continue
            if not hasattr(label, "text") or label.text() != message:
                continue
            timer = QTimer(toast)
            timer.setSingleShot(True)
            timer.setInterval(int(seconds * 1000))

            def close(toast=toast, timer=timer) -> None:
                if toast.underMouse():
                    timer.start()  # the user is reading it
                else:
                    toast.close_with_fade()

            timer.timeout.connect(close)
            timer.start()
            toast._napari_sam_timer = timer

    QTimer.singleShot(0, arm)


def report_error(what: str, err: BaseException, status: Callable[[str], None] | None = None) -> None:
    """Tell the user that ``what`` failed, with the exception's message: the full text in the widget's
    status line (if given) and its first line, at most :data:`NOTIFICATION_CHARS` characters, in a napari
    notification that closes after :data:`TOAST_SECONDS`. User errors (``ValueError``) read as plain
    sentences and are warnings; anything else is an error.
    """
    text = str(err) or type(err).__name__
    user_error = isinstance(err, ValueError)
    message = (
        f"napari-sam: {what}: {text}"
        if user_error
        else f"napari-sam: {what} failed ({type(err).__name__}): {text}"
    )
    if status is not None:
        status(message)
    short = short_message(message)
    if short != message and status is not None:
        short = short_message(message, NOTIFICATION_CHARS - 22) + " (details in the dock)"
    (show_warning if user_error else show_error)(short)
    _expire_toast(short, TOAST_SECONDS)


def start_worker(
    func: Callable,
    *args,
    what: str,
    on_return: Callable | None = None,
    on_yield: Callable | None = None,
    on_finish: Callable | None = None,
    status: Callable[[str], None] | None = None,
    progress: dict | bool | None = None,
    **kwargs,
):
    """Run ``func(*args, **kwargs)`` (a function or a generator) in a napari ``thread_worker``.

    Parameters
    ----------
    what
        A short description for error messages ("computing embeddings").
    on_return, on_yield, on_finish
        Slots for the worker's ``returned``, ``yielded`` and ``finished`` signals (main thread).
    status
        Where to write a one-line outcome besides the notification (the widget's status label).
    progress
        napari progress bar: ``{"total": n, "desc": "..."}`` (a generator yields once per step) or
        ``True`` for a busy indicator; None for none.

    Returns
    -------
    The started worker (``worker.quit()`` asks a generator to stop at its next ``yield``).
    """

    def _errored(err: BaseException) -> None:
        if _is_cancel(err):
            if status is not None:
                status(f"Cancelled {what}.")
        else:
            report_error(what, err, status)

    # Our own "errored" slot (given here, so superqt does not re-raise in the event loop) replaces
    # napari's relay of raw tracebacks: the user sees one clear message of what failed and why.
    worker = create_worker(
        func, *args, _progress=progress or None, _connect={"errored": _errored}, _start_thread=False, **kwargs
    )
    try:
        worker.errored.disconnect(worker._relay_error)
    except (AttributeError, TypeError, RuntimeError):
        pass
    if on_return is not None:
        worker.returned.connect(on_return)
    if on_yield is not None and hasattr(worker, "yielded"):
        worker.yielded.connect(on_yield)
    if on_finish is not None:
        worker.finished.connect(on_finish)
    worker.start()
    return worker


def make_progress_relay(desc: str = ""):
    """A ``(callback, relay)`` pair for core functions that report ``progress(done, total)``.

    ``callback`` may be called from any thread: it forwards the numbers to the main thread through a
    queued Qt signal (``relay.step(done, total)``, which the dock's progress panel shows) and raises
    :class:`JobCancelled` once ``relay.cancel()`` was called, which stops the core function at its next
    step. Call ``relay.close()`` (main thread) when the job is over; ``desc`` names the job.

    No entry in napari's activity panel: while any is open, napari's status bar animates a busy
    indicator about 25 times a second, and each repaint of the window (under software OpenGL, 30 ms)
    holds the GIL, so the job's own thread waited: segment everything on 2× down-scaled nuclei took
    120 s in napari against 34 s outside it.
    """
    from qtpy.QtCore import QObject
    from qtpy.QtCore import Signal as QtSignal

    class _Relay(QObject):
        step = QtSignal(int, int)

        def __init__(self) -> None:
            super().__init__()
            self.desc = desc
            self.cancelled = False

        def cancel(self) -> None:
            self.cancelled = True

        def close(self) -> None:
            """The job is over. Nothing to release: the relay opens no napari progress."""

    relay = _Relay()

    def callback(done: int, total: int) -> None:
        if relay.cancelled:
            raise JobCancelled(f"cancelled after {done} of {total} steps")
        relay.step.emit(int(done), int(total))

    return callback, relay


def one_per_turn(steps: list[Callable[[], object]], then: Callable[[], object]) -> None:
    """Run ``steps`` one per Qt event-loop turn (the viewer repaints and answers between them), then
    ``then()``; main thread.
    """
    from qtpy.QtCore import QTimer

    if not steps:
        then()
        return
    steps[0]()
    QTimer.singleShot(0, lambda: one_per_turn(steps[1:], then))
