"""Falling back from an accelerated path (a compiled or exported encoder) to plain torch, said once."""

from __future__ import annotations

import warnings


def fall_back(err: BaseException, message: str, stacklevel: int = 2) -> str:
    """Warn that an accelerated path failed and what runs instead; the failure in one line.

    Parameters
    ----------
    err
        The exception the accelerated path raised.
    message
        The warning, with ``{failed}`` where the one-line failure goes.
    stacklevel
        As for :func:`warnings.warn`, counted from the caller of this function.

    Returns
    -------
    str
        ``"ExceptionType: first line of its message"``, to keep as the reason.
    """
    first_line = (str(err).strip().splitlines() or [""])[0]
    failed = f"{type(err).__name__}: {first_line}"
    warnings.warn(message.format(failed=failed), RuntimeWarning, stacklevel=stacklevel + 1)
    return failed
