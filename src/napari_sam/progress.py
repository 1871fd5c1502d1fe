"""Progress as the user reads it: percentage, steps done of total and the time left, for any long job
(embedding, segment everything, batch, fine-tuning). One formatter, used by every front end.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def format_duration(seconds: float) -> str:
    """``seconds`` as "12 s", "3 min 05 s" or "1 h 02 min"."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class ProgressClock:
    """Turns ``(done, total)`` steps into a line such as "37 % · 163/441 tiles · about 2 min 10 s left".

    The time left is the mean time per step since the first report times the steps left (reports
    before the first step move that start, so a job that waits before it begins does not look slow);
    it is shown once a step finished and at least half a second passed (earlier estimates mislead).

    Parameters
    ----------
    unit
        What a step is ("tiles", "planes", "windows", "epochs").
    clock
        A monotonic clock in seconds (tests pass a fake one).
    """

    def __init__(self, unit: str = "steps", clock: Callable[[], float] = time.perf_counter) -> None:
        self.unit = unit
        self._clock = clock
        self._start: float | None = None
        self._start_done = 0

    def restart(self) -> None:
        """Forget the timing (a new job, or a resumed one whose first steps came from a cache)."""
        self._start = None
        self._start_done = 0

    def eta(self, done: int, total: int) -> float | None:
        """Seconds left, or None while there is no estimate yet."""
        now = self._clock()
        if self._start is None:
            self._start, self._start_done = now, done
            return None
        steps = done - self._start_done
        if steps <= 0:  # no step yet (a job waiting before its first one): time from the last report
            self._start = now
            return None
        elapsed = now - self._start
        if elapsed < 0.5:
            return None
        return elapsed / steps * max(total - done, 0)

    def text(self, done: int, total: int) -> str:
        """The progress line for ``done`` of ``total`` steps ("" when ``total`` is 0)."""
        if total <= 0:
            return ""
        pct = 100 * min(done, total) // total
        line = f"{pct} % · {done}/{total} {self.unit}"
        left = self.eta(done, total)
        if left is not None and done < total:
            line += f" · about {format_duration(left)} left"
        return line
