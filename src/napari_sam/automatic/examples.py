"""Segment "like these": settings learnt from a few committed objects, and the objects kept as they are.

From example objects (a label image of the image's shape: committed objects, 0 elsewhere) the box
proposals take

* the object size: the examples' median equivalent diameter guides the image's own size estimate
  (only blobs of 2/3 to 3/2 of it count), and a size range (a quarter of the smallest example's area,
  half its diameter, to three times the largest's) drops candidates outside it, except that a mask
  reaching the image's edge may be smaller (the edge cuts objects);
* the polarity: objects brighter or darker than a ring of pixels around them (in the channel the
  proposals read: the gray mean, or the haematoxylin of stained RGB);
* a prototype of their embedding features (:mod:`~napari_sam.automatic.prototype`): the examples'
  boxes are answered with the proposals, in the same windows, and candidates much less similar to the
  prototype than the examples are to each other are dropped; the similarity also ranks overlapping
  candidates;
* how the model scores objects like them: where the model scores the examples' own boxes lower than
  it scores objects elsewhere, the predicted-IoU threshold comes down to 0.1 under their median score
  (:func:`score_threshold`);

and the result keeps every example object under its own label, adding only candidates that do not
overlap them (no object twice).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage as ndi

from napari_sam.automatic.box_mode import BoxModeParams
from napari_sam.automatic.filters import Candidates
from napari_sam.automatic.polarity import bright_objects
from napari_sam.automatic.proposals import Proposals, label_boxes
from napari_sam.automatic.prototype import prototype, similarity, similarity_floor
from napari_sam.automatic.score_bar import lowered_threshold
from napari_sam.image.normalize import PreparedImage


def check_examples(examples, shape: tuple[int, int]) -> np.ndarray:
    """``examples`` as an (H, W) int32 label image, or a ``ValueError`` naming the expected shape."""
    ex = np.asarray(examples)
    if ex.shape != tuple(shape):
        raise ValueError(
            f"examples must be a label image of the image's shape {tuple(shape)} (0 = background, "
            f"one integer per object); got shape {ex.shape}"
        )
    if ex.dtype.kind not in "iub":
        raise ValueError(f"examples must hold integer labels; got dtype {ex.dtype}")
    ex = ex.astype(np.int32)
    if not ex.any():
        raise ValueError(
            f"examples hold no objects: give a label image of shape {tuple(shape)} with at least one "
            f"non-zero object, or examples=None"
        )
    return ex


def describe_examples(image: PreparedImage, examples: np.ndarray) -> dict:
    """Size, size range and polarity of the example objects (see the module's description)."""
    areas = np.bincount(examples.ravel())[1:]
    areas = areas[areas > 0]
    h, w = image.shape
    gray = bright_objects(image.region(0, h, 0, w), "bright")[0]
    inside = examples > 0
    ring = ndi.binary_dilation(inside, iterations=max(2, int(np.sqrt(np.median(areas)) / 3))) & ~inside
    contrast = float(gray[inside].mean() - gray[ring].mean()) if ring.any() else 0.0
    return {
        "count": int(areas.size),
        "diameter": float(2.0 * np.sqrt(np.median(areas) / np.pi)),
        "min_area": int(max(4, areas.min() // 4)),
        "max_area": int(3 * areas.max()),
        "polarity": "bright" if contrast >= 0 else "dark",
    }


def params_like(params: BoxModeParams, learnt: dict) -> BoxModeParams:
    """``params`` with the size, size range and polarity of the examples (settings given stay).

    The examples' diameter is a hint for the image's own size estimate (``size_hint``), not the
    proposals' diameter: a few objects' mean size is on another scale than the blob estimate the split
    rules were made for. Taken as the diameter, five ground-truth nuclei cost F1 0.883 → 0.802 on the
    inverted variant and 0.835 → 0.779 on the unevenly lit one.
    """
    defaults = BoxModeParams()
    changes = {}
    for name in ("min_area", "max_area"):
        if getattr(params, name) == getattr(defaults, name):
            changes[name] = learnt[name]
    if params.diameter is None and params.size_hint is None:
        changes["size_hint"] = learnt["diameter"]
    if params.polarity == "auto":
        changes["polarity"] = learnt["polarity"]
    return dataclasses.replace(params, **changes)


def keep_examples(labels: np.ndarray, examples: np.ndarray, max_shared: float = 0.2) -> np.ndarray:
    """Examples under their own labels plus the found objects that share at most ``max_shared`` of
    their area with them, relabelled after the examples' largest label.
    """
    out = examples.astype(np.int32).copy()
    next_id = int(out.max()) + 1
    for value, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        mask = labels[sl] == value
        shared = (examples[sl][mask] > 0).mean()
        if shared > max_shared:
            continue
        free = mask & (out[sl] == 0)
        out[sl][free] = next_id
        next_id += 1
    return out


EXAMPLE_SOURCE = "example"


def with_example_boxes(proposals: Proposals, examples: np.ndarray, pad: float) -> Proposals:
    """``proposals`` followed by the boxes of the example objects (grown by ``pad``), tagged "example"."""
    h, w = examples.shape
    boxes = label_boxes(examples)
    boxes = np.clip(boxes + np.array([-pad, -pad, pad, pad]), 0, [h - 1, w - 1, h - 1, w - 1])
    return dataclasses.replace(
        proposals,
        boxes=np.concatenate([proposals.boxes, boxes]),
        source=np.concatenate([proposals.source, np.full(len(boxes), EXAMPLE_SOURCE)]),
    )


def like_examples(
    cands: Candidates,
    num_proposals: int,
    slack: float = 5.0,
    image_shape: tuple[int, int] | None = None,
) -> tuple[Candidates, np.ndarray, dict]:
    """The proposals' candidates that are like the examples, and how much.

    ``cands`` answer the proposals (prompt index < ``num_proposals``) and then the examples' boxes, all
    with features. The examples' features make the prototype and its similarity floor
    (:func:`~napari_sam.automatic.prototype.similarity_floor` with ``slack``); proposal candidates below
    the floor are dropped, except, given ``image_shape`` (H, W), masks reaching the image's edge: they
    show part of an object, and their features part of its look (clicked nuclei of the H&E-like variant:
    14 of the 16 candidates under the floor were such masks, F1 0.853 with them dropped, 0.861 kept).
    Returns the kept candidates, their similarity clipped to [0, 1] (a ranking
    weight: the most example-like of overlapping candidates is painted first) and counters.

    The floor is generous (5 spreads): LiteMedSAM's mean-pooled features tell nuclei from other
    candidates only weakly, and with 3 spreads the 2× down-scaled nuclei lost 73 of 346 candidates,
    many of them nuclei (F1 with 5 ground-truth examples 0.618, against 0.682 with 5 spreads and 0.691
    without examples); low SNR 0.741 → 0.755; the other variants unchanged.
    """
    is_example = cands.prompt >= num_proposals
    found = cands.subset(np.flatnonzero(~is_example))
    if not is_example.any() or cands.features is None or not len(found):
        return found, np.ones(len(found), np.float32), {"like_examples_dropped": 0}
    feats = cands.features[is_example]
    proto = prototype(feats)
    floor = similarity_floor(feats, slack)
    sims = similarity(found.features, proto)
    like = sims >= floor
    if image_shape is not None:
        like |= found.touches_edge(image_shape)
    keep = np.flatnonzero(like)
    weight = np.clip(sims[keep], 0.0, 1.0).astype(np.float32)
    counters = {"similarity_floor": round(floor, 3), "like_examples_dropped": int(len(found) - len(keep))}
    return found.subset(keep), weight, counters


def score_threshold(cands: Candidates, num_proposals: int, threshold: float) -> float:
    """The predicted-IoU bar for candidates like the examples (:mod:`~napari_sam.automatic.score_bar`):
    ``threshold``, or a margin under the median predicted IoU of the examples' own boxes (prompt index ≥
    ``num_proposals``) where that is lower.

    On the 2× down-scaled nuclei the examples' boxes scored a median 0.73 (the original's 0.86); with
    three draws of five examples, F1 0.832 / 0.823 / 0.816 → 0.847 / 0.847 / 0.846, the other variants
    keeping their threshold or their F1 (``/tmp/s16/exthr.py``).
    """
    return lowered_threshold(cands.scores[cands.prompt >= num_proposals], threshold)
