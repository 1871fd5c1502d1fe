"""Training data: images and instance label images checked, cut into annotated planes, and their objects.

Images are 2D ((H, W) or (H, W, C)) or stacks ((P, H, W) or (P, H, W, C)); labels are integer instance
label images of the image's (H, W) or (P, H, W) shape. In a stack, planes whose labels are all zero were
not annotated and are skipped. Every check runs before any model is loaded, so bad input costs nothing.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from napari_sam.image.normalize import ImageLayout, IntensityScaling, PreparedImage, to_hwc

MIN_OBJECTS = 8  # fewer cannot be split into a training and a validation set that mean anything
MIN_OBJECT_AREA = 9  # pixels; smaller specks are label noise, not objects a user prompts


@dataclass
class TrainingPlane:
    """One annotated 2D plane.

    Attributes
    ----------
    image
        (H, W, c) raw plane (numpy, c = 1..3 used channels), in the image's own dtype.
    labels
        (H, W) int32 instance labels, 0 = background.
    scaling
        The intensity scaling of the image it comes from (one per stack, as the session computes it).
    source, plane
        Which input image (index) and which of its planes (0 for 2D).
    """

    image: np.ndarray
    labels: np.ndarray
    scaling: IntensityScaling
    layout: ImageLayout
    source: int
    plane: int

    def prepared(self, image: np.ndarray | None = None, scaling: IntensityScaling | None = None):
        """The plane (or an augmented ``image`` of it) as the session's :class:`PreparedImage`."""
        return PreparedImage(self.image if image is None else image, scaling or self.scaling, self.layout)


@dataclass(frozen=True)
class ObjectRef:
    """One object: plane index into the planes list, its label id and its bounding box
    (min_row, min_col, max_row, max_col), max inclusive, in the plane's pixels.
    """

    plane: int
    label: int
    bbox: tuple[int, int, int, int]
    area: int


def _read(item, what: str):
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        if not path.exists():
            raise ValueError(f"{what} file {path} does not exist")
        from napari_sam.io.images import read_image

        return read_image(path)
    return item


def _as_labels(labels, index: int) -> np.ndarray:
    if hasattr(labels, "labels") and hasattr(labels, "objects"):  # napari_sam.annotations.Annotations
        labels = labels.labels
    arr = np.asarray(labels.compute() if hasattr(labels, "compute") else labels)
    if arr.dtype == bool:
        raise ValueError(
            f"labels {index} are a boolean mask; fine-tuning needs instance labels (one integer id per "
            "object, 0 = background), e.g. scipy.ndimage.label(mask)[0]"
        )
    if arr.dtype.kind == "f":
        raise ValueError(
            f"labels {index} are floating point ({arr.dtype}); fine-tuning needs integer instance labels "
            "(0 = background). If the values are whole numbers, convert with labels.astype(np.int32)."
        )
    if arr.dtype.kind not in "iu":
        raise ValueError(f"labels {index} have dtype {arr.dtype}; expected integer instance labels")
    if arr.dtype.kind == "i" and arr.size and arr.min() < 0:
        raise ValueError(
            f"labels {index} hold negative values; instance labels are 0 (background) or ids > 0"
        )
    return arr


def _is_stack(image_shape: tuple[int, ...], labels_shape: tuple[int, ...], index: int) -> bool:
    """Whether this (image, labels) pair is a stack; ``ValueError`` when the shapes do not fit."""
    if len(labels_shape) == 3 and labels_shape[-1] in (3, 4):  # planes 3 or 4 pixels wide: a colour image
        raise ValueError(
            f"labels {index} have shape {labels_shape}, the shape of an RGB(A) image, not of instance "
            f"labels: labels hold one integer per pixel, shape {labels_shape[:2]} here (was the image "
            "passed as its own labels?)"
        )
    ok = len(labels_shape) in (2, 3) and (
        image_shape == labels_shape
        or (len(image_shape) == len(labels_shape) + 1 and image_shape[: len(labels_shape)] == labels_shape)
    )
    if not ok:
        raise ValueError(
            f"labels {index} have shape {labels_shape} but image {index} has shape {image_shape}: labels "
            "must be (H, W) for a 2D image ((H, W) or (H, W, C)), (P, H, W) for a stack ((P, H, W) or "
            "(P, H, W, C))"
        )
    return len(labels_shape) == 3


def fingerprint_array(arr) -> str:
    """sha256 of an array's shape, dtype and bytes (the provenance recorded for each training input)."""
    arr = np.ascontiguousarray(np.asarray(arr))
    digest = hashlib.sha256(f"{arr.shape}|{arr.dtype.str}|".encode())
    digest.update(arr.tobytes())
    return digest.hexdigest()


def training_planes(
    images, labels, *, channel_axis: int | None = None
) -> tuple[list[TrainingPlane], list[dict]]:
    """Check ``images`` and ``labels`` and return the annotated planes and one provenance record per input.

    Parameters
    ----------
    images, labels
        One image and its labels, or equally long lists of them. Arrays (numpy, dask, zarr), file paths
        (TIFF, zarr, .npy), or for labels an :class:`~napari_sam.annotations.Annotations`.
    channel_axis
        The channel axis of multichannel images (default: a last axis of 3 or 4 is RGB(A)).

    Returns
    -------
    planes
        The planes holding at least one labelled pixel.
    inputs
        Per input: shape, dtype, fingerprints of image and labels, annotated plane indices.
    """
    from napari_sam.image.planes import make_source

    if not isinstance(images, (list, tuple)):
        images = [images]
    if not isinstance(labels, (list, tuple)):
        labels = [labels]
    if len(images) != len(labels):
        raise ValueError(
            f"{len(images)} image(s) but {len(labels)} label image(s): give one label image each"
        )
    if not images:
        raise ValueError("no images given")
    planes: list[TrainingPlane] = []
    inputs: list[dict] = []
    for i, (img, lab) in enumerate(zip(images, labels)):
        img = _read(img, "image")
        lab = _as_labels(_read(lab, "labels"), i)
        shape = tuple(int(v) for v in img.shape)
        stack = _is_stack(shape, lab.shape, i)
        if channel_axis is not None and stack:
            source = make_source(img, stack_axis=0, channel_axis=channel_axis)
        else:
            source = make_source(img, stack_axis=0 if stack else None, channel_axis=channel_axis)
        lab3 = lab if stack else lab[None]
        annotated = [p for p in range(lab3.shape[0]) if lab3[p].any()]
        for p in annotated:
            raw = to_hwc(source.data[p], source.layout)
            raw = np.asarray(raw.compute() if hasattr(raw, "compute") else raw)
            planes.append(TrainingPlane(raw, lab3[p].astype(np.int32), source.scaling, source.layout, i, p))
        inputs.append(
            {
                "shape": list(shape),
                "dtype": str(np.dtype(img.dtype)),
                "image_sha256": fingerprint_array(np.asarray(img)),
                "labels_sha256": fingerprint_array(lab),
                "annotated_planes": annotated,
                "is_stack": stack,
            }
        )
    return planes, inputs


def find_objects(planes: list[TrainingPlane], min_area: int = MIN_OBJECT_AREA) -> list[ObjectRef]:
    """Every labelled object of at least ``min_area`` pixels, plane by plane."""
    objects = []
    for k, plane in enumerate(planes):
        lab = plane.labels
        areas = np.bincount(lab.ravel())
        for label, box in enumerate(ndimage.find_objects(lab), start=1):
            if box is None or areas[label] < min_area:
                continue
            rows, cols = box
            bbox = (rows.start, cols.start, rows.stop - 1, cols.stop - 1)
            objects.append(ObjectRef(k, label, bbox, int(areas[label])))
    return objects


def check_enough(objects: list[ObjectRef], needed: int = MIN_OBJECTS) -> None:
    if not objects:
        raise ValueError(
            "no annotated object: the labels are all zero (or every object is smaller than "
            f"{MIN_OBJECT_AREA} pixels). Label at least {needed} objects."
        )
    if len(objects) < needed:
        raise ValueError(
            f"only {len(objects)} annotated object(s); fine-tuning needs at least {needed} (some are held "
            f"out to validate). Label {needed - len(objects)} more."
        )


def split_objects(
    objects: list[ObjectRef], val_fraction: float, rng: np.random.Generator
) -> tuple[list[ObjectRef], list[ObjectRef]]:
    """A seeded split into (train, validation); at least 2 objects on each side."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1; got {val_fraction}")
    order = rng.permutation(len(objects))
    n_val = int(round(val_fraction * len(objects)))
    n_val = min(max(n_val, 2), len(objects) - 2)
    val = sorted((objects[i] for i in order[:n_val]), key=lambda o: (o.plane, o.label))
    train = sorted((objects[i] for i in order[n_val:]), key=lambda o: (o.plane, o.label))
    return train, val
