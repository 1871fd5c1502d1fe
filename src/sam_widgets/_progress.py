"""Progress bars for long work in a notebook: adapts the core's ``progress(done, total)`` callbacks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress_bar(
    desc: str, *, enabled: bool = True, unit: str = "window"
) -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback drawing a ``tqdm.auto`` bar.

    A widget in notebooks, text elsewhere.

    Parameters
    ----------
    desc
        The bar's label, e.g. ``"embedding"``.
    enabled
        When False the callback does nothing (no bar).

    Examples
    --------
    >>> with progress_bar("embedding") as progress:
    ...     segmenter.set_image(image, progress=progress)
    """
    if not enabled:
        yield lambda done, total: None
        return
    from tqdm.auto import tqdm

    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=int(total), desc=desc, unit=unit, leave=False)
        if bar.total != total:
            bar.total = int(total)
        bar.n = int(done)
        bar.refresh()

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()
