"""Writers for Labels layers (TIFF, OME-Zarr) and a reader for napari-sam annotation folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from napari_sam.io import labels


def write_labels_tiff(path: str, data, meta: dict) -> list[str]:
    """npe2 writer: a Labels layer's data as a zlib-compressed TIFF (smallest unsigned dtype), written
    atomically by :func:`napari_sam.io.labels.write_labels_tiff`; returns ``[path]``.
    """
    labels.write_labels_tiff(path, data)
    return [path]


def write_labels_ome_zarr(path: str, data, meta: dict) -> list[str]:
    """npe2 writer: a Labels layer as a single-scale OME-Zarr (NGFF 0.4, zarr format 2) label image with
    the layer's scale and translate as coordinate transformations, written atomically by
    :func:`napari_sam.io.labels.write_labels_ome_zarr`; returns ``[path]``.
    """
    labels.write_labels_ome_zarr(
        path,
        data,
        scale=meta.get("scale"),
        translate=meta.get("translate"),
        name=meta.get("name", "labels"),
        source_image=None,
    )
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
