"""Lazy reading of large images: TIFF / BigTIFF / OME-TIFF and zarr become dask arrays; nothing is
read until a region is asked for, and then only the chunks (TIFF tiles or strips) under it.

>>> data = read_image("slide.ome.tif")       # dask array, chunked like the file's tiles
>>> seg.set_image(data, cache="slide.embeddings.zarr")
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8", ".tf2")
# The one list of image files the CLI, batch runs and the widgets accept (compound suffixes first, so
# :func:`image_stem` strips ``.ome.tif`` whole). Other formats still open in read_image, read whole.
IMAGE_SUFFIXES = (".ome.tiff", ".ome.tif", ".ome.zarr", *TIFF_SUFFIXES, ".zarr", ".npy")
DEFAULT_CHUNK = 1024  # chunk side for in-memory arrays turned into dask
MAX_WHOLE_PLANE_PIXELS = 1 << 30  # a plane read whole into memory (batch) may have at most this many pixels


def is_image_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an accepted image (by :data:`IMAGE_SUFFIXES`; hidden files are not)."""
    name = Path(path).name.lower()
    return name.endswith(IMAGE_SUFFIXES) and not name.startswith(".")


def image_stem(path: str | os.PathLike) -> str:
    """The file name without its image suffix: ``a.ome.tif`` → ``a``, ``b.zarr/`` → ``b``."""
    name = Path(path).name.rstrip("/")
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def file_dialog_filter(label: str = "Images") -> str:
    """A Qt file-dialog filter for the accepted images, e.g. ``"Images (*.tif *.tiff …)"``."""
    return f"{label} (" + " ".join(dict.fromkeys(f"*{s[s.rindex('.') :]}" for s in IMAGE_SUFFIXES)) + ")"


def check_whole_read(path, plane_shape: tuple[int, ...], dtype, limit: int = MAX_WHOLE_PLANE_PIXELS) -> None:
    """``ValueError`` when one plane of ``plane_shape`` (H, W[, C]) is too large to be read whole.

    Guards whole-plane reads against files whose header claims an enormous image (a decompression
    bomb: a few hundred bytes can claim 100000 × 100000 pixels); only the header is consulted, nothing
    is allocated.
    """
    h, w = int(plane_shape[0]), int(plane_shape[1])
    if h * w <= limit:
        return
    nbytes = int(np.prod(plane_shape, dtype=np.float64)) * np.dtype(dtype).itemsize
    raise ValueError(
        f"{path}: a plane of {h} × {w} pixels ({h * w / 1e9:.1f} Gpx, {nbytes / 1e9:.1f} GB in memory) is "
        f"larger than a whole-plane read allows ({limit / 1e9:.2f} Gpx); if the file really holds such an "
        f"image, embed and annotate it tile by tile (napari-sam embed) or raise max_plane_pixels"
    )


def _check_tiff_complete(tif, path: Path) -> None:
    """``ValueError`` when the file ends before the image data its pages point to (a cut-short copy)."""
    size = tif.filehandle.size
    end = 0
    for page in tif.pages:
        for offset, count in zip(page.dataoffsets, page.databytecounts):
            end = max(end, int(offset) + int(count))
    if end > size:
        raise ValueError(
            f"{path} is truncated: it is {size} bytes long but its image data runs to byte {end} (an "
            f"interrupted copy or download); copy or export it again"
        )


def _multiscales(group) -> list | None:
    """A zarr group's OME-Zarr ``multiscales`` metadata (NGFF 0.4, or 0.5 under ``ome``), or None."""
    attrs = dict(group.attrs)
    return attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")


def _from_zarr_node(node, level: int):
    """A zarr array, or the ``level``-th array of a multiscale group (OME-Zarr ``multiscales`` or
    arrays named 0, 1, …).
    """
    import dask.array as da
    import zarr

    if isinstance(node, zarr.Array):
        return da.from_zarr(node)
    paths: list[str] = []
    multiscales = _multiscales(node)
    if multiscales:
        paths = [d["path"] for d in multiscales[0].get("datasets", [])]
    if not paths:
        keys = sorted(node.array_keys(), key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
        paths = list(keys)
    if not paths:
        raise ValueError("this zarr group holds no arrays; pass the path of an array inside it")
    if not 0 <= level < len(paths):
        raise ValueError(f"level {level} does not exist: this image has {len(paths)} level(s) {paths}")
    return da.from_zarr(node[paths[level]])


def read_image(path: str | os.PathLike, *, series: int = 0, level: int = 0):
    """Open an image file lazily.

    Parameters
    ----------
    path
        A TIFF (``.tif``, ``.tiff``, ``.btf``; BigTIFF and OME-TIFF included), a zarr store
        (``.zarr`` folder: an array, or a multiscale group such as OME-Zarr), or a ``.npy`` file
        (memory-mapped). Other formats (PNG, JPEG, …) are read whole with scikit-image.
    series
        TIFF series (OME-TIFF images with several series).
    level
        Pyramid level (0 = full resolution) of a multiscale TIFF or zarr group.

    Returns
    -------
    dask.array.Array
        The image in its stored axis order ((Y, X), (Y, X, C), (Z, Y, X), …) and dtype, chunked like the
        file (TIFF tiles/strips, zarr chunks).
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise ValueError(f"no such image: {p}")
    name = p.name.lower()
    if p.is_dir() or name.endswith((".zarr", ".zarr/")):
        import zarr

        try:
            node = zarr.open(str(p), mode="r")
        except Exception as err:  # zarr raises several types for "not a zarr store"
            raise ValueError(f"{p} is not a readable zarr store: {err}") from None
        return _from_zarr_node(node, level)
    if name.endswith(TIFF_SUFFIXES):
        import tifffile
        import zarr

        try:
            with tifffile.TiffFile(p) as tif:
                n_series = len(tif.series)
                n_levels = len(tif.series[series].levels) if series < n_series else 0
                _check_tiff_complete(tif, p)
        except (tifffile.TiffFileError, struct.error, EOFError) as err:
            raise ValueError(f"{p} is not a readable TIFF: {err}") from None
        if not 0 <= series < n_series:
            raise ValueError(f"series {series} does not exist: {p.name} has {n_series} series")
        if not 0 <= level < n_levels:
            raise ValueError(
                f"level {level} does not exist: series {series} of {p.name} has {n_levels} level(s)"
            )
        store = tifffile.imread(p, aszarr=True, series=series, level=level)
        return _from_zarr_node(zarr.open(store, mode="r"), 0)
    if name.endswith(".npy"):
        return as_dask(np.load(p, mmap_mode="r"))
    from skimage.io import imread

    return as_dask(imread(p))


def image_axes(path: str | os.PathLike, *, series: int = 0) -> str | None:
    """The axes a file declares, one upper-case letter each in stored order (``"ZCYX"``, ``"YXS"``), or
    None where it declares none.

    TIFF: tifffile's reading of the series (ImageJ hyperstacks, OME-TIFF; ``S`` are the samples of an RGB
    pixel, ``Q``/``I`` axes it could not name). OME-Zarr: the ``axes`` of its ``multiscales``. Other
    files and plain zarr arrays: None.
    """
    p = Path(path).expanduser()
    name = p.name.lower()
    try:
        if name.endswith(TIFF_SUFFIXES):
            import tifffile

            with tifffile.TiffFile(p) as tif:
                axes = str(tif.series[series].axes).upper()
            # axes tifffile could not name (Q, I; "QQQYX" for a plain 5-D file): the shape decides
            unnamed = set(axes) & set("QI")
            if len(set(axes)) < len(axes) or (unnamed and not set(axes) - set("QIYXS")):
                return None
            return axes or None
        if p.is_dir() or name.endswith((".zarr", ".zarr/")):
            import zarr

            node = zarr.open(str(p), mode="r")
            if isinstance(node, zarr.Array):
                return None
            axes = (_multiscales(node) or [{}])[0].get("axes")
            if not axes:
                return None
            return "".join(str(a["name"] if isinstance(a, dict) else a)[0] for a in axes).upper()
    except Exception:  # unreadable here: read_image says why
        return None
    return None


def as_dask(image, chunk: int = DEFAULT_CHUNK):
    """numpy, zarr or dask → dask array (a dask array is returned as is).

    In-memory and memory-mapped arrays get chunks of ``chunk`` pixels along their two longest axes
    (the image plane), the whole of short axes (≤ 4: channels) and 1 along the others (planes);
    zarr arrays keep their own chunks.
    """
    import dask.array as da

    if isinstance(image, da.Array):
        return image
    if type(image).__module__.startswith("zarr"):
        return da.from_zarr(image)
    arr = image if hasattr(image, "shape") and hasattr(image, "dtype") else np.asarray(image)
    longest = set(np.argsort(arr.shape)[-2:].tolist())
    chunks = tuple(min(chunk, s) if a in longest else (s if s <= 4 else 1) for a, s in enumerate(arr.shape))
    return da.from_array(arr, chunks=chunks)


def is_lazy(image) -> bool:
    """True for dask and zarr arrays (reads cost I/O), False for numpy."""
    return not isinstance(image, np.ndarray) and (
        hasattr(image, "dask") or type(image).__module__.startswith("zarr")
    )
