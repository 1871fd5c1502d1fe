"""Proposal mode: classical candidate boxes answered as box prompts, filtered and de-overlapped.

For box-trained models (``spec.auto_mode == "boxes"``). The encoder runs once per planned window
(:mod:`~napari_sam.automatic.planning`), every window's boxes are decoded in batches, and masks are
kept over their box's neighbourhood only (:mod:`~napari_sam.automatic.decode`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np

from napari_sam.automatic.background import flatten, needs_flattening
from napari_sam.automatic.clusters import mask_roles
from napari_sam.automatic.decode import decode_window
from napari_sam.automatic.denoise import check_denoise
from napari_sam.automatic.edges import smoothed_objects
from napari_sam.automatic.filters import Candidates, clean_mask, stability_score
from napari_sam.automatic.planning import plan_windows
from napari_sam.automatic.polarity import bright_objects, check_polarity
from napari_sam.automatic.proposals import Proposals, propose_boxes, smallest_proposal_area, to_gray
from napari_sam.automatic.prototype import pool_feature
from napari_sam.automatic.scale import blob_boxes, estimate_diameter, small_population_diameter
from napari_sam.automatic.zoom import ZOOM_CHOICES, check_zoom_factor, choose_zoom, decide, sample_means
from napari_sam.image.normalize import PreparedImage
from napari_sam.models.device import decode_chunk
from napari_sam.models.loading import SamModel


@dataclass(frozen=True)
class BoxModeParams:
    """Settings of proposal mode.

    Attributes
    ----------
    pred_iou_thresh
        Drop masks whose predicted IoU is below this.
    stability_thresh
        Drop masks whose stability score (IoU of the masks at logit ±``stability_offset``) is below this.
    stability_offset
        Logit offset of the stability score.
    rim_allowance
        Pixels of uncertain rim allowed to every object, whatever its size. The stability score of a disk
        of radius r with a rim of δ uncertain pixels is about 1 − 2δ/r, so a fixed threshold asks small
        objects for sharper rims than large ones: images whose typical object has a radius r get the
        threshold ``min(stability_thresh, max(0.6, 1 − 2 · rim_allowance / r))``
        (:func:`stability_threshold`). 0 applies ``stability_thresh`` as it is.
    zoom_factor
        Each box is answered from a window about this many times its extent (the object then spans
        about S / zoom_factor model pixels, whatever its size in the image). ``"auto"`` lets the model
        choose per image between 7 and 10 (:mod:`~napari_sam.automatic.zoom`): blurry or noisy objects
        are answered better with more context (2× down-scaled nuclei F1 0.691 → 0.758).
    min_window_fraction
        Smallest window side as a fraction of the model's input S: objects a few pixels across are
        answered from windows up-scaled up to 1 / this (default 8×) so that they reach the model's size.
    polarity
        ``"auto"`` (decided per image from its topology; stained brightfield RGB is read through its
        haematoxylin concentration), ``"bright"`` or ``"dark"``: how objects look against their
        surroundings (:mod:`~napari_sam.automatic.polarity`).
    flatten
        ``"auto"`` (decided per image: when a global threshold leaves out many of the object-sized
        blobs, as under uneven illumination), True or False: subtract the background and divide by the
        local contrast before proposing (:mod:`~napari_sam.automatic.background`); the model still
        sees the original pixels. Always on would cost evenly lit images (nuclei F1 0.788 instead of
        0.884, uneven illumination 0.757 instead of 0.676).
    denoise
        ``"auto"`` (decided per image: when the objects stand less than five noise levels above their
        background), True or False: denoise the image with non-local means before it is segmented; the
        model and the proposals both see the denoised pixels (:mod:`~napari_sam.automatic.denoise`:
        low-SNR nuclei F1 0.778 → 0.821).
    sigma, diameter, spacings
        Proposal settings (:func:`~napari_sam.automatic.proposals.propose_boxes`); ``sigma`` None
        smooths by a twentieth of the diameter (0.6–3 pixels); ``diameter`` None estimates the typical
        object size from the image's scale-space blobs (:mod:`~napari_sam.automatic.scale`).
    size_hint
        A rough typical diameter (pixels) known beforehand, e.g. from example objects: the estimate
        then counts only blobs of 2/3 to 3/2 of it (and falls back to it). ``diameter`` overrides both.
    threshold
        Foreground threshold of the proposals on the image they read (objects bright, display scale);
        None: Otsu's threshold of the image. :func:`~napari_sam.automatic.segment_stack` sets one for
        the whole stack, so planes with nothing but noise (the dim ends of a stack) propose nothing.
    box_pad
        Pixels added around every proposal box.
    max_overlap
        A mask whose area is already claimed by more than this fraction is dropped.
    min_area
        Smallest object in pixels (default: a sixteenth of the typical object's area, at least 6; of
        the small objects' where the image holds a population of much smaller objects as well, read from
        its blobs: ``info["small_diameter"]``, :func:`~napari_sam.automatic.scale.small_population_diameter`).
    max_area
        Largest object in pixels (default: no limit but the proposals' quarter of the image).
    batch_size
        Box prompts per decoder call (boxes of similar size are batched together); on a CPU at most
        :data:`napari_sam.models.device.CPU_DECODE_CHUNK`.
    low_levels
        Extra proposal levels below the Otsu threshold (fractions of the way from the background level
        to it), for dim objects.
    decoder_context
        Tokens of context around each box that the decoder's transformer sees (None: the whole window,
        exact; a few tokens give nearly the same masks at a fraction of the cost).
    drop_clusters
        Drop masks that hold two smaller, mostly disjoint candidates (one mask over touching objects),
        unless no darker seam separates the two (one object cut in two: its halves rank below it;
        :func:`~napari_sam.automatic.clusters.mask_roles`).
    upscale_allowance
        Stability bonus per doubling of a window's up-sampling beyond 2× (model input side / window
        side). Small objects are answered from strongly up-sampled, blurry windows, where the model's
        mask edges are softer and its stability lower for the same quality (2× down-scaled nuclei: F1
        0.660 → 0.691, 4× down: 0.743 → 0.759; windows up-sampled less than 2× are unchanged).
    edge_weight
        Rank masks that do not stand out of their immediate surroundings (fragments cut from inside an
        object) below the rest, so a whole object wins over its fragment
        (:mod:`~napari_sam.automatic.edges`).
    blob_proposals
        Also propose a box around every strong scale-space blob of about the object size that no other
        proposal matches (:func:`~napari_sam.automatic.scale.blob_boxes`): blobs hold in noise and
        between touching objects, where a threshold does not (low SNR F1 0.755 → 0.766, 2× down 0.758
        → 0.769).
    edge_outlines
        Move each object's outline outwards to where the image's intensity falls most steeply, among
        the model's lower logit levels (:mod:`~napari_sam.automatic.extents`): the model's masks of
        blurred, dim or noisy objects are too tight.
    size_ranking
        Rank masks larger than 1.25 typical objects (the examples' or the typical proposals' median
        area) lower in proportion, so single objects win over a mask holding two of them
        (:mod:`~napari_sam.automatic.size_rank`).
    """

    pred_iou_thresh: float = 0.7
    stability_thresh: float = 0.7
    stability_offset: float = 1.0
    rim_allowance: float = 1.5
    zoom_factor: float | str = "auto"
    min_window_fraction: float = 0.125
    polarity: str = "auto"
    flatten: bool | str = "auto"
    denoise: bool | str = "auto"
    sigma: float | None = None
    diameter: float | None = None
    size_hint: float | None = None
    spacings: tuple[float, ...] = (0.3, 0.5)
    threshold: float | None = None
    box_pad: float = 1.0
    max_overlap: float = 0.3
    min_area: int | None = None
    max_area: int | None = None
    batch_size: int = 32
    low_levels: tuple[float, ...] = (0.5,)
    decoder_context: int | None = None
    drop_clusters: bool = True
    upscale_allowance: float = 0.1
    edge_weight: bool = True
    blob_proposals: bool = True
    edge_outlines: bool = True
    size_ranking: bool = True

    def __post_init__(self) -> None:
        check_polarity(self.polarity)
        if self.flatten not in (True, False, "auto"):
            raise ValueError(
                f"flatten must be True, False or 'auto' (decided per image); got {self.flatten!r}"
            )
        check_denoise(self.denoise)
        if self.rim_allowance < 0:
            raise ValueError(f"rim_allowance must be ≥ 0 pixels; got {self.rim_allowance}")
        for name in ("pred_iou_thresh", "stability_thresh", "max_overlap"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1]; got {v}")
        if self.diameter is not None and self.diameter <= 0:
            raise ValueError(
                f"diameter must be positive (pixels) or None to estimate it; got {self.diameter}"
            )
        if self.size_hint is not None and self.size_hint <= 0:
            raise ValueError(f"size_hint must be positive (pixels) or None; got {self.size_hint}")
        if self.min_area is not None and self.max_area is not None and self.min_area > self.max_area:
            raise ValueError(
                f"min_area ({self.min_area}) is larger than max_area ({self.max_area}): no object could pass"
            )
        if not 0.0 < self.min_window_fraction <= 1.0:
            raise ValueError(f"min_window_fraction must lie in (0, 1]; got {self.min_window_fraction}")
        check_zoom_factor(self.zoom_factor)
        for name in ("drop_clusters", "edge_weight", "blob_proposals", "edge_outlines", "size_ranking"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False; got {getattr(self, name)!r}")
        if not 0.0 <= self.upscale_allowance <= 0.5:
            raise ValueError(f"upscale_allowance must lie in [0, 0.5]; got {self.upscale_allowance}")

    def to_dict(self) -> dict:
        return asdict(self)


def gray_of(image: PreparedImage) -> np.ndarray:
    """(H, W) float32 gray display pixels of a prepared image (read whole)."""
    h, w = image.shape
    return to_gray(image.region(0, h, 0, w))


def box_candidates(
    model: SamModel,
    image: PreparedImage,
    embeddings,
    proposals: Proposals,
    params: BoxModeParams,
    progress: Callable[[int, int], None] | None = None,
    features: bool = False,
    larger_from_typical: bool = True,
) -> tuple[Candidates, dict]:
    """Answer every proposal box; one candidate mask per box, before filtering.

    ``embeddings`` is anything with ``get(window) -> (1, C, h, w)`` tensor (e.g.
    :class:`~napari_sam.embeddings.embedder.WindowEmbeddings`). With ``features`` every candidate also
    gets its embedding feature (:func:`~napari_sam.automatic.prototype.pool_feature`).
    ``larger_from_typical`` is :func:`~napari_sam.automatic.planning.plan_windows`' (the zoom probe
    turns it off: it asks how boxes fare at a factor, each in a window of its own class). Returns the
    candidates and counters.
    """
    shape = image.shape
    factor, zoom = params.zoom_factor, {}
    if factor == "auto":
        factor, zoom = zoom_for(model, image, embeddings, proposals, params)
    windows, assign = plan_windows(
        proposals.boxes,
        shape,
        model.input_size,
        factor=factor,
        min_fraction=params.min_window_fraction,
        larger_from_typical=larger_from_typical,
    )
    masks, offsets, scores, stab, prompt, feats, kept_logits = [], [], [], [], [], [], []
    for j, window in enumerate(windows):
        idx = np.flatnonzero(assign == j)
        b = proposals.boxes[idx]
        # similar sizes per batch: a batch's crops share the size of its largest
        idx = idx[np.argsort(np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]), kind="stable")]
        emb = embeddings.get(window)
        bonus = params.upscale_allowance * np.log2(max(model.input_size / window.size / 2.0, 1.0))
        crops = decode_window(
            model,
            emb,
            window,
            shape,
            boxes_rc=proposals.boxes[idx],
            batch_size=decode_chunk(model.device, params.batch_size),
            context=params.decoder_context,
        )
        for i, crop in zip(idx, crops):
            logits = crop.logits[0]
            masks.append(clean_mask(logits > 0))
            if params.edge_outlines:
                kept_logits.append(logits.astype(np.float16))
            offsets.append(crop.offset)
            scores.append(float(crop.scores[0]))
            stab.append(min(1.0, float(stability_score(logits, 0.0, params.stability_offset)) + bonus))
            prompt.append(int(i))
            if features:
                feats.append(pool_feature(emb, window, model.input_size, masks[-1], crop.offset))
        if progress is not None:
            progress(j + 1, len(windows))
    cands = Candidates(
        masks,
        np.array(offsets, dtype=np.int64).reshape(-1, 2),
        np.array(scores, np.float32),
        np.array(stab, np.float32),
        np.array(prompt, np.int64),
        np.array(feats, np.float32).reshape(len(masks), -1) if features else None,
        kept_logits if params.edge_outlines else None,
    )
    return cands, {
        "proposals": len(proposals),
        "windows": len(windows),
        "decoded": len(cands),
        "diameter": proposals.diameter,
        **zoom,
        **{k: v for k, v in proposals.reading.items() if k != "diameter"},
    }


def _predicted_iou(
    model: SamModel, image: PreparedImage, embeddings, proposals: Proposals, params: BoxModeParams
):
    """``predicted_iou(indices, factor)`` for :mod:`~napari_sam.automatic.zoom`: the model's predicted IoU
    of its answers to ``proposals.boxes[indices]`` at zoom ``factor``.
    """

    def predicted_iou(idx: np.ndarray, f: float) -> np.ndarray:
        sample = Proposals(
            proposals.boxes[idx], proposals.source[idx], proposals.diameter, proposals.threshold
        )
        at = replace(params, zoom_factor=f)
        return box_candidates(model, image, embeddings, sample, at, larger_from_typical=False)[0].scores

    return predicted_iou


def zoom_for(
    model: SamModel, image: PreparedImage, embeddings, proposals: Proposals, params: BoxModeParams
) -> tuple[float, dict]:
    """The zoom factor the model scores best for these proposals (:func:`~napari_sam.automatic.zoom.
    choose_zoom`: a sample of typical proposals answered at each candidate factor), and the evidence.
    """
    return choose_zoom(proposals.boxes, _predicted_iou(model, image, embeddings, proposals, params))


def fix_zoom(
    model: SamModel, images: list[PreparedImage], params: BoxModeParams
) -> tuple[BoxModeParams, dict]:
    """``params`` with an ``"auto"`` zoom factor replaced by the one the model chooses on ``images`` (a
    stack's planes with the most contrast, whose scores are pooled, so that every plane is answered
    alike), and the evidence.
    """
    if params.zoom_factor != "auto":
        return params, {}
    from napari_sam.embeddings.embedder import WindowEmbeddings

    pooled: dict[float, list[float]] = {}
    for image in images:
        embeddings = WindowEmbeddings(model, image, capacity=16)
        proposals = propose(image, params)
        means, _ = sample_means(proposals.boxes, _predicted_iou(model, image, embeddings, proposals, params))
        for f, m in means.items():
            pooled.setdefault(f, []).append(m)
    if not pooled:
        return replace(params, zoom_factor=ZOOM_CHOICES[0]), {}
    factor, evidence = decide({f: float(np.mean(v)) for f, v in pooled.items()})
    return replace(params, zoom_factor=factor), evidence


def select(
    cands: Candidates,
    params: BoxModeParams,
    diameter: float,
    weight: np.ndarray | None = None,
    bright: np.ndarray | None = None,
    object_diameter: float | None = None,
    size_weight: np.ndarray | None = None,
    image_shape: tuple[int, int] | None = None,
) -> tuple[Candidates, np.ndarray]:
    """Filter by predicted IoU, stability and size; return the survivors and their painting order
    (highest predicted IoU × stability × ``weight``, an optional (N,) factor per candidate, first).

    With ``drop_clusters``, masks over two objects are dropped; given ``bright`` (the (H, W)
    objects-bright image the proposals read), only where a darker seam separates the two parts or the
    mask is larger than ``WHOLE_AREA`` typical objects (of ``object_diameter``, default ``diameter``)
    without looking like one blob of its own size (:func:`~napari_sam.automatic.clusters.
    scale_preference`), and the pieces of one object (no seam) rank below their whole
    (× ``FRAGMENT_WEIGHT``).

    ``size_weight`` (N,) is :func:`~napari_sam.automatic.size_rank.size_weights`: it lowers the rank of
    masks larger than the typical object, except the wholes the seams vouch for (a large object among
    small ones is one object, not a merge).

    Given ``image_shape`` (H, W), masks that reach the image's edge are exempt from the smallest area:
    the edge may cut an object to any fraction of its size.
    """
    min_area = params.min_area if params.min_area is not None else smallest_object_area(diameter)
    areas = cands.areas
    large_enough = areas >= min_area
    if image_shape is not None and len(cands):
        large_enough |= cands.touches_edge(image_shape)
    ok = (
        (cands.scores >= params.pred_iou_thresh)
        & (cands.stability >= stability_threshold(params, object_diameter or diameter))
        & large_enough
        & (areas <= (params.max_area if params.max_area is not None else np.inf))
    )
    idx = np.flatnonzero(ok)
    fragment = whole = np.zeros(len(idx), dtype=bool)
    if params.drop_clusters and len(idx):
        smooth, background = (None, 0.0) if bright is None else smoothed_objects(bright, diameter)
        typical_area = np.pi * ((object_diameter or diameter) / 2.0) ** 2
        roles = mask_roles(
            cands.subset(idx),
            smooth=smooth,
            background=background,
            max_whole_area=WHOLE_AREA * typical_area,
            typical_radius=(object_diameter or diameter) / 2.0,
        )
        keep = ~roles.clusters
        idx, fragment, whole = idx[keep], roles.fragments[keep], roles.wholes[keep]
    kept = cands.subset(idx)
    rank = kept.scores * kept.stability * np.where(fragment, FRAGMENT_WEIGHT, 1.0).astype(np.float32)
    if weight is not None:
        rank = rank * np.asarray(weight, dtype=np.float32)[idx]
    if size_weight is not None:
        sizes = np.asarray(size_weight, dtype=np.float32)[idx]
        rank = rank * np.where(whole, 1.0, sizes)  # a whole (seamless parts) is one object: no penalty
    order = np.argsort(-rank, kind="stable")
    return kept, order


def smallest_object_area(diameter: float) -> int:
    """The smallest mask kept for objects of ``diameter`` pixels (the proposals' diameter): (diameter / 8)²
    · π, at least 6.
    """
    return max(6, int(np.pi * (diameter / 8) ** 2))


RIM_STABILITY_FLOOR = 0.6  # the rim allowance never takes the stability threshold below this


def stability_threshold(params: BoxModeParams, object_diameter: float) -> float:
    """The stability threshold for objects of a typical ``object_diameter`` (pixels): ``stability_thresh``,
    lowered for small objects so that they may have ``rim_allowance`` pixels of uncertain rim.

    Measured on the nuclei variants (fp32; bf16 under autocast in brackets): the 2× down-scaled nuclei
    (radius 6.4 px) get 0.6, F1 0.769 → 0.805 (0.743 → 0.800); objects of radius 10 px and more keep
    0.7. A uniform 0.6 helped the H&E-like variant too (0.845 → 0.895) but cost the original 0.048
    (0.893 → 0.845): fragments of touching nuclei whose whole was dropped as a cluster.
    """
    if params.rim_allowance <= 0 or not object_diameter or object_diameter <= 0:
        return params.stability_thresh
    lenient = 1.0 - 4.0 * params.rim_allowance / object_diameter  # 1 − 2δ/r with r = d / 2
    return min(params.stability_thresh, max(RIM_STABILITY_FLOOR, lenient))


FRAGMENT_WEIGHT = 0.5  # ranking factor of a half of one object (its whole is painted first)
WHOLE_AREA = 1.4  # masks over this many typical objects' area are clusters whatever their seam


SMALL_OBJECT_FRACTION = 0.8  # proposals' diameter / the estimated median diameter


def proposal_sigma(diameter: float) -> float:
    """Smoothing before thresholding: a twentieth of the object diameter, 0.6–3 pixels."""
    return float(np.clip(diameter / 20.0, 0.6, 3.0))


def propose(image: PreparedImage, params: BoxModeParams) -> Proposals:
    """Candidate boxes of a prepared 2D image.

    The image is read as a biologist would: the channel that shows the objects, turned so that they
    are bright (:func:`~napari_sam.automatic.polarity.bright_objects`), their typical size estimated
    from its blobs, the background and uneven illumination taken out; proposals are made from that
    image. ``Proposals.reading`` records the channel, polarity, diameter and correction.
    """
    h, w = image.shape
    bright, reading = bright_objects(image.region(0, h, 0, w), params.polarity)
    # the proposals' split rules work on the smaller objects of the population: 0.8 × the median size
    typical = float(params.diameter) if params.diameter else estimate_diameter(bright, near=params.size_hint)
    d = typical if params.diameter else SMALL_OBJECT_FRACTION * typical
    reading["diameter"] = round(d, 2)
    reading["object_diameter"] = round(typical, 1)
    if d <= 0:
        reading["empty"] = "no objects: no blob stands out of the noise"
        return Proposals(np.zeros((0, 4)), np.zeros(0, dtype="<U20"), 0.0, 0.0, reading)
    sigma = params.sigma if params.sigma is not None else proposal_sigma(d)
    flat = params.flatten
    if flat == "auto":
        flat, evidence = needs_flattening(bright, d, sigma)
        reading.update(evidence)
    source = flatten(bright, d) if flat else bright
    reading["flattened"] = bool(flat)
    if flat and not params.diameter:
        # an uneven background inflates the blobs' scale: read the size again on the flattened image
        # (uneven illumination: 32.0 px before, 25.4 after, as on the evenly lit original)
        typical = estimate_diameter(source, near=params.size_hint) or typical
        d = SMALL_OBJECT_FRACTION * typical
        reading["diameter"] = round(d, 2)
        reading["object_diameter"] = round(typical, 1)
        if params.sigma is None:
            sigma = proposal_sigma(d)
    # a population of objects much smaller than the typical one (the median blob's) is proposed too
    small = None if params.diameter else small_population_diameter(source, typical)
    if small:
        reading["small_diameter"] = round(small, 1)
    props = propose_boxes(
        source,
        sigma=sigma,
        threshold=params.threshold,
        diameter=d,
        spacings=params.spacings,
        pad=params.box_pad,
        low_levels=tuple(params.low_levels),
        min_area=smallest_proposal_area(SMALL_OBJECT_FRACTION * small) if small else None,
    )
    if params.blob_proposals and len(props):
        props = with_blob_boxes(props, blob_boxes(source, typical, pad=params.box_pad))
        if small:
            props = with_blob_boxes(props, blob_boxes(source, small, pad=params.box_pad))
    props.reading = reading
    props.image = bright
    return props


def with_blob_boxes(props: Proposals, blobs: np.ndarray, dedupe_iou: float = 0.75) -> Proposals:
    """The proposals plus the blob boxes that no proposal already matches (box IoU ≤ ``dedupe_iou``)."""
    from napari_sam.automatic.proposals import dedupe_boxes

    if not len(blobs):
        return props
    boxes = np.concatenate([props.boxes, blobs])
    keep = dedupe_boxes(boxes, dedupe_iou)
    keep = keep[keep >= len(props.boxes)]
    source = np.concatenate([props.source, np.full(len(keep), "blob")])
    return Proposals(np.concatenate([props.boxes, boxes[keep]]), source, props.diameter, props.threshold)
