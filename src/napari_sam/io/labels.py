"""Writing label images atomically: TIFF (compressed, BigTIFF when large) and OME-Zarr labels.

Every writer goes through :func:`napari_sam.io.atomic.atomic_path` (a temporary sibling, flushed, then
renamed into place), so a reader (or a rerun) sees either the whole output or nothing. Label values are
stored in the smallest unsigned integer type that holds the largest one. The CLI, batch runs and
napari's Labels writers all write through here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from napari_sam.io.atomic import atomic_path

FORMATS = ("tiff", "ome-zarr")
SUFFIX = {"tiff": "_labels.tif", "ome-zarr": "_labels.ome.zarr"}
BIGTIFF_BYTES = 2**31  # classic TIFF offsets are 32-bit: anything near 4 GiB needs BigTIFF (margin kept)
DEFAULT_AXES = {2: "yx", 3: "zyx", 4: "tzyx", 5: "tczyx"}
_AXIS_KINDS = {"z": "space", "y": "space", "x": "space", "t": "time", "c": "channel"}


def smallest_label_dtype(labels) -> np.dtype:
    """uint8/16/32/64: the smallest that holds ``labels.max()``; ``ValueError`` for negative labels or
    labels that are not integers. ``labels`` may be lazy (dask): only its minimum and maximum are read.
    """
    dtype = np.dtype(labels.dtype) if hasattr(labels, "dtype") else np.asarray(labels).dtype
    if dtype.kind not in "iub":
        raise ValueError(f"labels must hold integer ids (0 = background); these are {dtype} values")
    size = int(np.prod(np.shape(labels)))
    if size and dtype.kind == "i" and int(labels.min()) < 0:
        raise ValueError(f"labels must be ≥ 0 (0 = background); found {int(labels.min())}")
    top = int(labels.max()) if size else 0
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if top <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise ValueError(f"label {top} does not fit in 64 bits")


def _checked(labels, axes: str | None):
    """``labels`` (array-like, kept lazy when it is) in its smallest dtype, and its lower-case axes."""
    lazy = hasattr(labels, "compute")  # dask: stays lazy
    if not lazy:
        labels = np.asarray(labels)
    if labels.ndim not in DEFAULT_AXES:
        raise ValueError(
            f"labels must have 2 to 5 axes, (H, W) to (T, C, Z, H, W); got shape {tuple(labels.shape)}"
        )
    axes = (axes or DEFAULT_AXES[labels.ndim]).lower()
    if len(axes) != labels.ndim:
        raise ValueError(f"axes {axes!r} name {len(axes)} axes, but the labels have {labels.ndim}")
    dtype = smallest_label_dtype(labels)
    return (labels.astype(dtype) if lazy else labels.astype(dtype, copy=False)), axes


def write_labels_tiff(
    path: str | os.PathLike,
    labels,
    *,
    axes: str | None = None,
    compression: str = "zlib",
    metadata: dict | None = None,
) -> Path:
    """Write a label image of 2 to 5 axes ((H, W), (Z, H, W), ...) as a compressed TIFF, atomically.

    Parameters
    ----------
    path
        Target file (``.tif``).
    labels
        Integer labels, 0 = background (numpy or dask); stored as the smallest unsigned type that holds
        them.
    axes
        Axis letters for the ImageJ-compatible metadata ("YX", "ZYX"; default from ``labels.ndim``).
    compression
        A tifffile compression name (``zlib`` is lossless and readable everywhere).
    metadata
        Extra key/values stored as JSON in the image description.
    """
    import tifffile

    data, axes = _checked(labels, axes)
    data = np.asarray(data)
    target = Path(path)
    with atomic_path(target) as tmp:
        tifffile.imwrite(
            tmp,
            data,
            compression=compression,
            bigtiff=data.nbytes >= BIGTIFF_BYTES,
            metadata={"axes": axes.upper(), **(metadata or {})},
            photometric="minisblack",
        )
    return target


def write_labels_ome_zarr(
    path: str | os.PathLike,
    labels,
    *,
    axes: str | None = None,
    chunk: int = 1024,
    metadata: dict | None = None,
    scale: Sequence[float] | None = None,
    translate: Sequence[float] | None = None,
    name: str | None = None,
    source_image: str | None = "../../",
) -> Path:
    """Write labels as an OME-Zarr (NGFF 0.4) label image, atomically.

    The store is a zarr v2 group with one full-resolution array ``0`` (chunks of one plane by
    ``chunk`` × ``chunk`` pixels, compressed), ``multiscales`` metadata naming its axes (with ``scale``
    and ``translate`` per axis as coordinate transformations) and an ``image-label`` entry (pointing at
    ``source_image`` when given), so napari and OME-Zarr readers open it as labels. Dask labels are
    written chunk by chunk, never whole in memory.
    """
    import zarr

    data, axes = _checked(labels, axes)
    target = Path(path)
    ndim = data.ndim
    transforms = [
        {"type": "scale", "scale": [float(v) for v in (scale if scale is not None else [1.0] * ndim)]}
    ]
    if translate is not None and any(float(v) for v in translate):
        transforms.append({"type": "translation", "translation": [float(v) for v in translate]})
    image_label = {"version": "0.4", **({"source": {"image": source_image}} if source_image else {})}
    with atomic_path(target, folder=True) as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        chunks = tuple([1] * (ndim - 2) + [min(chunk, data.shape[-2]), min(chunk, data.shape[-1])])
        arr = root.create_array("0", shape=data.shape, dtype=data.dtype, chunks=chunks, fill_value=0)
        if hasattr(data, "compute"):  # dask: stream it
            import dask.array as da

            # one task per zarr chunk: without a lock, two dask chunks writing into one zarr chunk
            # each read, update and write it back, and one update was lost (3 of 40 writes of a
            # (3, 64, 48) stack in dask chunks of 32 rows)
            da.store(data.rechunk(chunks), arr, lock=False)
        else:
            arr[...] = np.asarray(data)
        root.attrs.update(
            {
                "multiscales": [
                    {
                        "version": "0.4",
                        "name": name or target.name,
                        "axes": [{"name": a, "type": _AXIS_KINDS.get(a, "space")} for a in axes],
                        "datasets": [{"path": "0", "coordinateTransformations": transforms}],
                    }
                ],
                "image-label": image_label,
                **({"napari_sam": metadata} if metadata else {}),
            }
        )
    return target


def write_labels(path: str | os.PathLike, labels: np.ndarray, fmt: str = "tiff", **kwargs) -> Path:
    """Write labels in ``fmt`` (``"tiff"`` or ``"ome-zarr"``), atomically."""
    if fmt == "tiff":
        return write_labels_tiff(path, labels, **kwargs)
    if fmt == "ome-zarr":
        return write_labels_ome_zarr(path, labels, **kwargs)
    raise ValueError(f"unknown label format {fmt!r}; use one of {', '.join(FORMATS)}")


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """Read a label TIFF or OME-Zarr label image written here back into memory."""
    p = Path(path)
    if p.is_dir():
        import zarr

        return np.asarray(zarr.open_group(str(p), mode="r")["0"][...])
    import tifffile

    return tifffile.imread(p)
