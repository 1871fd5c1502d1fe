"""Writers for Labels layers (TIFF, OME-Zarr) and a reader for napari-sam annotation folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

_AXES = {2: "yx", 3: "zyx", 4: "tzyx", 5: "tczyx"}


def _labels_array(data) -> np.ndarray | object:
    dtype = np.dtype(data.dtype)
    if dtype.kind not in "iub":
        raise ValueError(f"labels must hold integer ids; this layer holds {dtype} values")
    return data


def write_labels_tiff(path: str, data, meta: dict) -> list[str]:
    """Write a Labels layer's data to a zlib-compressed TIFF; returns ``[path]``."""
    import tifffile

    data = np.asarray(_labels_array(data))
    tifffile.imwrite(
        path, data, compression="zlib", metadata={"axes": _AXES.get(data.ndim, "").upper() or None}
    )
    return [path]


def write_labels_ome_zarr(path: str, data, meta: dict) -> list[str]:
    """Write a Labels layer as a single-scale OME-Zarr (NGFF 0.4, zarr format 2) image with the layer's
    scale and translate as coordinate transformations; returns ``[path]``.
    """
    import zarr

    data = _labels_array(data)
    ndim = len(data.shape)
    if ndim not in _AXES:
        raise ValueError(f"OME-Zarr labels need 2 to 5 axes; this layer has {ndim}")
    names = _AXES[ndim]
    axes = [{"name": n, "type": "time" if n == "t" else "channel" if n == "c" else "space"} for n in names]
    scale = [float(s) for s in meta.get("scale", [1.0] * ndim)]
    translate = [float(t) for t in meta.get("translate", [0.0] * ndim)]
    transforms = [{"type": "scale", "scale": scale}]
    if any(translate):
        transforms.append({"type": "translation", "translation": translate})
    root = zarr.open_group(path, mode="w", zarr_format=2)
    chunks = tuple(min(s, 1 if i < ndim - 2 else 1024) for i, s in enumerate(data.shape))
    arr = root.create_array("0", shape=tuple(data.shape), dtype=data.dtype, chunks=chunks)
    if hasattr(data, "compute"):
        import dask.array as da

        da.store(data, arr, lock=False)
    else:
        arr[...] = np.asarray(data)
    root.attrs["multiscales"] = [
        {
            "version": "0.4",
            "name": meta.get("name", "labels"),
            "axes": axes,
            "datasets": [{"path": "0", "coordinateTransformations": transforms}],
        }
    ]
    root.attrs["image-label"] = {"version": "0.4"}
    return [path]


def _annotations_folder(path) -> Path | None:
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    p = Path(str(path))
    if p.name == "objects.json":
        p = p.parent
    if p.is_dir() and (p / "objects.json").is_file() and (p / "labels.tif").is_file():
        try:
            meta = json.loads((p / "objects.json").read_text())
        except (OSError, ValueError):
            return None
        if meta.get("format") == "napari-sam annotations":
            return p
    return None


def get_reader(path):
    """npe2 reader hook: a reader for napari-sam annotation folders (``labels.tif`` +
    ``objects.json``, as written by the annotator or ``Annotations.save``), else None.
    """
    return read_annotations if _annotations_folder(path) is not None else None


def read_annotations(path) -> list[tuple]:
    """The committed objects of an annotation folder as a Labels layer with an object table."""
    from napari_sam.annotations import Annotations

    folder = _annotations_folder(path)
    if folder is None:
        raise ValueError(f"{path} is not a napari-sam annotations folder")
    ann = Annotations.load(folder)
    table = ann.table()
    features = {
        "index": [o["id"] for o in table],
        "area": [o["area"] for o in table],
        "score": [np.nan if o["score"] is None else o["score"] for o in table],
    }
    return [
        (
            ann.labels,
            {
                "name": f"{folder.name} objects",
                "features": features,
                "metadata": {"napari_sam_objects": table},
            },
            "labels",
        )
    ]
