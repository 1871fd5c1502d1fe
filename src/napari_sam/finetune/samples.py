"""Training samples on cached, frozen image embeddings.

Each object is looked at through the window the session would answer it from (the zoom rule's window,
the tile holding it, or a window centred on it: :func:`napari_sam.geometry.tiling.window_for_box`), and
that window's embedding is computed once by the session's own encoder path and kept (float16, on the
CPU). A sample holds the object's mask at the decoder's logit resolution in that window's frame, its
box in the model frame, and what evaluating it in image pixels needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from napari_sam.embeddings.embedder import Cancelled, WindowEmbeddings
from napari_sam.embeddings.encoder import batch_inputs
from napari_sam.embeddings.preprocess import resized_extent
from napari_sam.finetune.augment import Variant
from napari_sam.finetune.data import ObjectRef, TrainingPlane
from napari_sam.geometry.coords import boxes_to_model_xyxy, innermost_pixel, median_extent
from napari_sam.geometry.tiling import TileGrid, click_search_window, window_for_box
from napari_sam.geometry.windows import Window, ZoomRule
from napari_sam.models.loading import SamModel

LOGIT_SIZE = 256  # the mask decoder's output side for every registered model (4 × the 64² embedding)


@dataclass
class Sample:
    """One object seen through one window.

    Attributes
    ----------
    window_index
        Index of the window's embedding in :attr:`SampleSet.embeddings`.
    target
        (256, 256) bool: the object in the window's frame at logit resolution (padding is background).
    box_xyxy
        (4,) float32 tight box (x0, y0, x1, y1) in the model input frame.
    window, image_shape
        The window and the (H, W) of the plane, to map logits back to image pixels.
    truth
        (h, w) bool: the object over the window's part of the image; ``truth_area`` its whole area.
    obj, variant
        Which object, under which augmentation.
    """

    window_index: int
    target: torch.Tensor
    box_xyxy: np.ndarray
    window: Window
    image_shape: tuple[int, int]
    truth: np.ndarray
    truth_area: int
    obj: ObjectRef
    variant: Variant


@dataclass
class SampleSet:
    """Samples and the embeddings (float16, (N, 256, 64, 64)) of the windows they use; ``inputs`` keeps the
    (N, 3, S, S) model inputs when the image encoder is adapted too.

    ``windows_total`` counts the windows the objects needed; ``left_out`` the objects without a sample
    because embedding stopped at its deadline before their windows (0 when every window was embedded).

    ``search`` holds, object by object as in ``samples``, the same objects seen through the window a
    click on them is searched in (:func:`search_window`: the zoom window of an object of the committed
    objects' median extent around the click, or the tile that holds it). A box-trained model's click is a
    search over boxes decoded there (:mod:`~napari_sam.prediction.progressive`), at that window's scale,
    not the object's own zoom window's; trained only at the zoom scale while the session searched whole
    tiles, the search picked worse boxes (right-half nuclei, low SNR: session click IoU mean 0.573 →
    0.498 after fine-tuning).
    """

    samples: list[Sample]
    embeddings: torch.Tensor
    inputs: torch.Tensor | None = None
    windows_total: int = 0
    left_out: int = 0
    search: list[Sample] | None = None

    def subset(self, objects: set[ObjectRef]) -> SampleSet:
        """The samples of ``objects``, sharing this set's embeddings (and inputs)."""
        keep = [i for i, smp in enumerate(self.samples) if smp.obj in objects]
        search = None if self.search is None else [self.search[i] for i in keep]
        return SampleSet(
            [self.samples[i] for i in keep], self.embeddings, self.inputs, self.windows_total, 0, search
        )


def logit_target(region: np.ndarray, extent: tuple[int, int, int, int], input_size: int) -> torch.Tensor:
    """(h, w) bool object mask over a window → (256, 256) bool at logit resolution, padded like the input."""
    _, _, rh, rw = extent
    f = LOGIT_SIZE / input_size
    th, tw = max(1, round(rh * f)), max(1, round(rw * f))
    x = torch.from_numpy(region.astype(np.float32))[None, None]
    shrink = min(th / region.shape[0], tw / region.shape[1])
    x = F.interpolate(x, size=(th, tw), mode="bilinear", align_corners=False, antialias=shrink < 0.5)
    out = torch.zeros(LOGIT_SIZE, LOGIT_SIZE, dtype=torch.bool)
    out[:th, :tw] = x[0, 0] >= 0.5
    return out


def _boxes_by_label(labels: np.ndarray, wanted: set[int]) -> dict[int, tuple[int, int, int, int]]:
    from scipy import ndimage

    boxes = {}
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is not None and label in wanted:
            boxes[label] = (box[0].start, box[1].start, box[0].stop - 1, box[1].stop - 1)
    return boxes


def build_samples(
    model: SamModel,
    planes: list[TrainingPlane],
    jobs: list[tuple[list[ObjectRef], Variant]],
    *,
    zoom: ZoomRule,
    keep_inputs: bool = False,
    click_extent: float | None = None,
    batch_size: int = 4,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    deadline: float | None = None,
) -> SampleSet:
    """Embed the windows of ``jobs`` (objects, each list under one augmentation) and build the samples.

    Windows are grouped per plane and variant (in the order the jobs first name them; a window shared by
    objects of several jobs is embedded once), encoded ``batch_size`` at a time; ``progress(done, total)``
    counts windows; ``should_stop()`` raises :class:`~napari_sam.embeddings.embedder.Cancelled`. Once
    ``time.monotonic()`` passes ``deadline`` no further window is embedded: the objects whose window was
    embedded get their samples, the others are counted in :attr:`SampleSet.left_out`.
    """
    s = model.input_size
    if click_extent is None:  # the session's guess of a clicked object's size, once these are committed
        click_extent = typical_extent([o for objects, _ in jobs for o in objects])
    # group: (plane, variant) -> objects
    groups: dict[tuple[int, Variant], list[ObjectRef]] = {}
    for objects, variant in jobs:
        for obj in objects:
            groups.setdefault((obj.plane, variant), []).append(obj)
    plans = []
    total = 0
    for (k, variant), objects in groups.items():
        plane = planes[k]
        labels = variant.apply(plane.labels)
        boxes = _boxes_by_label(labels, {o.label for o in objects})
        grid = TileGrid.for_image(labels.shape, s)
        placed = [
            (
                o,
                boxes[o.label],
                window_for_box(boxes[o.label], grid, zoom, s),
                search_window(grid, labels, o.label, boxes[o.label], click_extent, zoom, s),
            )
            for o in objects
        ]
        windows = list(dict.fromkeys(w for *_, zw, sw in placed for w in (zw, sw)))
        plans.append((plane, variant, labels, placed, windows))
        total += len(windows)
    samples: list[Sample] = []
    search: list[Sample] = []
    embeddings: list[torch.Tensor] = []
    inputs: list[torch.Tensor] = []
    done = left_out = 0
    chunk_s = 0.0  # how long the last batch of windows took: one that would end past the deadline waits

    def out_of_time() -> bool:
        return deadline is not None and time.monotonic() + chunk_s >= deadline

    for plane, variant, labels, placed, windows in plans:
        index: dict[Window, int] = {}
        if not out_of_time():
            image = plane.prepared(variant.apply(plane.image), variant.scaling(plane.scaling))
            bank = WindowEmbeddings(model, image, capacity=max(len(windows), 1), batch_size=batch_size)
        for i in range(0, len(windows), batch_size):
            if should_stop is not None and should_stop():
                raise Cancelled(f"stopped while embedding ({done} of {total} windows)")
            if out_of_time():
                break  # this plane's remaining objects (and later planes') are left out
            chunk = windows[i : i + batch_size]
            t0 = time.monotonic()
            bank.encode(chunk)
            chunk_s = time.monotonic() - t0
            for w in chunk:
                index[w] = len(embeddings)
                embeddings.append(bank.get(w).to("cpu", torch.float16)[0])
                if keep_inputs:
                    inputs.append(batch_inputs(image, [w], model.spec)[0])
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        for obj, bbox, window, searched in placed:
            if window not in index or searched not in index:
                left_out += 1
                continue
            samples.append(_sample(obj, bbox, window, index[window], labels, s, variant))
            search.append(_sample(obj, bbox, searched, index[searched], labels, s, variant))
    stacked = torch.stack(embeddings) if embeddings else torch.empty(0)
    kept_inputs = torch.stack(inputs) if keep_inputs and inputs else None
    return SampleSet(samples, stacked, kept_inputs, windows_total=total, left_out=left_out, search=search)


def typical_extent(objects: list[ObjectRef]) -> float:
    """The median extent (longest bounding-box side, pixels) of ``objects``: what a session holding them
    as committed objects takes for the size of the next object clicked
    (:meth:`~napari_sam.segmenter.Segmenter.typical_extent`).
    """
    return median_extent([o.bbox for o in objects])


def search_window(
    grid: TileGrid,
    labels: np.ndarray,
    label: int,
    bbox: tuple[int, int, int, int],
    extent: float,
    zoom: ZoomRule,
    input_size: int,
) -> Window:
    """The window a click on the object ``label`` of ``labels`` (its bounding box ``bbox``) is searched
    in, as the session searches a click on its innermost pixel when the committed objects' median extent
    is ``extent`` (:func:`~napari_sam.geometry.tiling.click_search_window`).
    """
    r0, c0, r1, c1 = bbox
    row, col = innermost_pixel(labels[r0 : r1 + 1, c0 : c1 + 1] == label)
    window, _ = click_search_window([(r0 + row, c0 + col)], extent, grid, zoom, input_size)
    return window


def _sample(obj, bbox, window: Window, embedding_index: int, labels: np.ndarray, s: int, variant) -> Sample:
    extent = resized_extent(window, labels.shape, s)
    h, w = extent[:2]
    truth = labels[window.row0 : window.row0 + h, window.col0 : window.col0 + w] == obj.label
    box = boxes_to_model_xyxy(np.asarray([bbox]), (window.row0, window.col0), window.scale(s))[0]
    return Sample(
        embedding_index,
        logit_target(truth, extent, s),
        box.astype(np.float32),
        window,
        tuple(labels.shape),
        truth,
        obj.area,
        obj,
        variant,
    )
