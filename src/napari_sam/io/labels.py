"""Writing label images atomically: TIFF (compressed, BigTIFF when large) and OME-Zarr labels.

Every writer puts its output under a temporary name next to the target (``.NAME.<random>.tmp``) and
renames it into place only when it is complete, so a reader (or a rerun) sees either the whole output
or nothing. Label values are stored in the smallest unsigned integer type that holds the largest one.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

FORMATS = ("tiff", "ome-zarr")
SUFFIX = {"tiff": "_labels.tif", "ome-zarr": "_labels.ome.zarr"}
BIGTIFF_BYTES = 2**31  # classic TIFF offsets are 32-bit: anything near 4 GiB needs BigTIFF (margin kept)
TMP_SUFFIX = ".tmp"


def smallest_label_dtype(labels: np.ndarray) -> np.dtype:
    """uint8/16/32/64: the smallest that holds ``labels.max()``; ``ValueError`` for negative labels."""
    labels = np.asarray(labels)
    if labels.size and labels.min() < 0:
        raise ValueError(f"labels must be ≥ 0 (0 = background); found {labels.min()}")
    top = int(labels.max(initial=0))
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if top <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise ValueError(f"label {top} does not fit in 64 bits")


def temporary_path(target: str | os.PathLike) -> Path:
    """A unique temporary sibling of ``target``: ``.NAME.<hex>.tmp`` in the same folder."""
    t = Path(target)
    return t.with_name(f".{t.name}.{uuid.uuid4().hex[:12]}{TMP_SUFFIX}")


def stale_temporaries(target: str | os.PathLike) -> list[Path]:
    """Leftover temporaries of ``target`` (from an interrupted run)."""
    t = Path(target)
    if not t.parent.exists():
        return []
    return sorted(t.parent.glob(f".{t.name}.*{TMP_SUFFIX}"))


def remove_path(path: str | os.PathLike) -> None:
    """Remove a file or folder if present."""
    p = Path(path)
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        p.unlink()


def _commit(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` into place (replacing an older ``target``)."""
    if target.is_dir() and not target.is_symlink():
        old = temporary_path(target)
        os.replace(target, old)
        os.replace(tmp, target)
        remove_path(old)
    else:
        os.replace(tmp, target)


def write_labels_tiff(
    path: str | os.PathLike,
    labels: np.ndarray,
    *,
    axes: str | None = None,
    compression: str = "zlib",
    metadata: dict | None = None,
) -> Path:
    """Write an (H, W) or (Z, H, W) label image as a compressed TIFF, atomically.

    Parameters
    ----------
    path
        Target file (``.tif``).
    labels
        Integer labels, 0 = background; stored as the smallest unsigned type that holds them.
    axes
        Axis letters for the ImageJ-compatible metadata ("YX", "ZYX"; default from ``labels.ndim``).
    compression
        A tifffile compression name (``zlib`` is lossless and readable everywhere).
    metadata
        Extra key/values stored as JSON in the image description.
    """
    import tifffile

    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise ValueError(f"labels must be (H, W) or (Z, H, W); got shape {labels.shape}")
    data = labels.astype(smallest_label_dtype(labels), copy=False)
    axes = axes or ("YX" if data.ndim == 2 else "ZYX")
    target = Path(path)
    tmp = temporary_path(target)
    try:
        meta = {"axes": axes, **(metadata or {})}
        tifffile.imwrite(
            tmp,
            data,
            compression=compression,
            bigtiff=data.nbytes >= BIGTIFF_BYTES,
            metadata=meta,
            photometric="minisblack",
        )
        _commit(tmp, target)
    except BaseException:
        remove_path(tmp)
        raise
    return target


def write_labels_ome_zarr(
    path: str | os.PathLike,
    labels: np.ndarray,
    *,
    axes: str | None = None,
    chunk: int = 1024,
    metadata: dict | None = None,
) -> Path:
    """Write labels as an OME-Zarr (NGFF 0.4) label image, atomically.

    The store is a zarr v2 group with one full-resolution array ``0`` (chunks of one plane by
    ``chunk`` × ``chunk`` pixels, compressed), ``multiscales`` metadata naming its axes and an
    ``image-label`` entry, so napari and OME-Zarr readers open it as labels.
    """
    import zarr

    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise ValueError(f"labels must be (H, W) or (Z, H, W); got shape {labels.shape}")
    data = labels.astype(smallest_label_dtype(labels), copy=False)
    axes = (axes or ("yx" if data.ndim == 2 else "zyx")).lower()
    kinds = {"z": "space", "y": "space", "x": "space", "t": "time", "c": "channel"}
    target = Path(path)
    tmp = temporary_path(target)
    try:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        chunks = tuple([1] * (data.ndim - 2) + [min(chunk, data.shape[-2]), min(chunk, data.shape[-1])])
        arr = root.create_array("0", shape=data.shape, dtype=data.dtype, chunks=chunks, fill_value=0)
        arr[...] = data
        root.attrs.update(
            {
                "multiscales": [
                    {
                        "version": "0.4",
                        "name": target.name,
                        "axes": [{"name": a, "type": kinds.get(a, "space")} for a in axes],
                        "datasets": [
                            {
                                "path": "0",
                                "coordinateTransformations": [{"type": "scale", "scale": [1.0] * data.ndim}],
                            }
                        ],
                    }
                ],
                "image-label": {"version": "0.4", "source": {"image": "../../"}},
                **({"napari_sam": metadata} if metadata else {}),
            }
        )
        _commit(tmp, target)
    except BaseException:
        remove_path(tmp)
        raise
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


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    target = Path(path)
    tmp = temporary_path(target)
    try:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
        _commit(tmp, target)
    except BaseException:
        remove_path(tmp)
        raise
    return target
