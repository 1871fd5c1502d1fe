"""How a batch input's axes become planes and channels: the file's declared axes (an ImageJ hyperstack's
``CYX`` or ``ZCYX``, OME metadata), or ``--axes`` given by the user, or else the shape alone.

Every input is seen as (Y, X[, C]) or (P, Y, X[, C]): one plane axis at most (Z, T or one the file does
not name) and one channel axis at most, moved last; other axes of length 1 are dropped. Labels are (Y, X)
or (P, Y, X).
"""

from __future__ import annotations

PLANE_FREE = "YXCS"  # the letters that are not a plane axis (C: channels, S: samples of an RGB pixel)


def interpret_axes(shape: tuple[int, ...]) -> tuple[bool, int | None]:
    """(is_stack, channel_axis of a plane) from the shape alone; ``ValueError`` when unsupported.

    Supported: (Y, X); (Y, X, 3|4) RGB(A); (Z, Y, X) stacks; (Z, Y, X, 3|4) RGB stacks.
    """
    if any(s == 0 for s in shape):
        raise ValueError(f"the image is empty (shape {shape})")
    nd = len(shape)
    if nd == 2:
        return False, None
    if nd == 3:
        return (False, None) if shape[-1] in (3, 4) else (True, None)
    if nd == 4 and shape[-1] in (3, 4):
        return True, None
    raise ValueError(
        f"unsupported dimensions {shape}: expected (Y, X), (Y, X, 3|4), (Z, Y, X) or (Z, Y, X, 3|4); "
        f"for channels or other axes name them with --axes (e.g. --axes CYX or --axes ZCYX)"
    )


def check_axes(axes: str | None) -> str | None:
    """``axes`` in upper case after checking it names Y and X once each and no letter twice; ``ValueError``
    naming the fix otherwise (None passes).
    """
    if axes is None:
        return None
    text = str(axes).strip().upper()
    if not text.isalpha() or text.count("Y") != 1 or text.count("X") != 1 or len(set(text)) != len(text):
        raise ValueError(
            f"axes {axes!r}: give one letter per axis of the file in stored order, Y and X once each "
            f"(e.g. CYX, ZCYX, TYX, YXC)"
        )
    return text


def standard_view(data, axes: str | None, channel: int | None = None):
    """``data`` (numpy or dask, as stored) seen as (Y, X[, C]) or (P, Y, X[, C]).

    Parameters
    ----------
    data
        The array as the file stores it.
    axes
        One letter per axis of ``data`` (see the module docstring), or None to go by the shape alone
        (:func:`interpret_axes`).
    channel
        Keep only this channel (0-based, along the C or S axis): the image is then grey.

    Returns
    -------
    view
        The array with the plane axis first and the channel axis last (a lazy transpose: nothing is read).
    is_stack
        Whether ``view`` has a plane axis.
    channel_axis
        The channel axis of one plane (2) where ``view`` has channels, else None (plain grey or by shape).
    """
    shape = tuple(int(s) for s in data.shape)
    if axes is None:
        stack, channel_axis = interpret_axes(shape)
        if channel is not None and len(shape) == (4 if stack else 3):  # RGB(A) by its shape
            axes = ("Z" if stack else "") + "YXS"
        elif channel is not None:
            raise ValueError(
                f"channel {channel} was asked for, but the image (shape {shape}) has no channel axis that "
                f"its file names: name its axes, e.g. --axes CYX"
            )
        else:
            return data, stack, channel_axis
    axes = check_axes(axes)
    if len(axes) != len(shape):
        raise ValueError(
            f"axes {axes} name {len(axes)} axes but the image has {len(shape)} (shape {shape}); give one "
            f"letter per axis, e.g. --axes {'ZCYX'[-len(shape) :] if len(shape) <= 4 else 'TZCYX'}"
        )
    if any(s == 0 for s in shape):
        raise ValueError(f"the image is empty (shape {shape})")
    had_channels = any(a in "CS" for a in axes)
    kept = [i for i, a in enumerate(axes) if shape[i] > 1 or a in "YX"]
    data = data[tuple(slice(None) if i in kept else 0 for i in range(len(shape)))]
    axes = "".join(axes[i] for i in kept)
    shape = tuple(shape[i] for i in kept)
    channels = [i for i, a in enumerate(axes) if a in "CS"]
    if channel is not None and len(channels) == 1:  # one channel kept: a grey image
        n = shape[channels[0]]
        if not 0 <= channel < n:
            raise ValueError(f"channel {channel} does not exist: the image has {n} channels (0 to {n - 1})")
        data = data[tuple(channel if i == channels[0] else slice(None) for i in range(len(shape)))]
        axes = axes.replace(axes[channels[0]], "")
        shape = tuple(v for i, v in enumerate(shape) if i != channels[0])
        channels = []
    elif channel is not None and not channels and not (had_channels and channel == 0):
        what = "one channel (0)" if had_channels else "no channel axis: name it with --axes (e.g. --axes CYX)"
        raise ValueError(
            f"channel {channel} was asked for, but the image's axes {axes} (shape {shape}) have {what}"
        )
    planes = [i for i, a in enumerate(axes) if a not in PLANE_FREE]
    if len(channels) > 1 or len(planes) > 1:
        raise ValueError(
            f"the image's axes {axes} (shape {shape}) have "
            + (f"{len(planes)} plane axes" if len(planes) > 1 else f"{len(channels)} channel axes")
            + ": napari-sam label takes one plane axis (Z or T) and one channel axis at most; split the "
            "file (e.g. one file per time point), or name the axes with --axes"
        )
    order = planes + [axes.index("Y"), axes.index("X")] + channels
    if order != list(range(len(order))):
        data = data.transpose(order)
    return data, bool(planes), (2 if channels else None)
