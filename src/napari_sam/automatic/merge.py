"""Putting labels together: objects across tile seams, and objects through the planes of a stack.

Tiles of a large image overlap; an object near a seam is seen by both tiles, whole or cut. Two objects
from different tiles are the same object when, inside the region both tiles saw, they cover mostly the
same pixels; such objects are joined (union of their masks) into one label over the whole image.

Through a stack, objects of consecutive planes are linked when their IoU is high enough (greedy one
to one, best pairs first), giving 3D labels with one id per object across planes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_sam.automatic.filters import Candidates, paint_labels
from napari_sam.automatic.metrics import iou_matrix


@dataclass
class TileLabels:
    """The labels one tile produced.

    Attributes
    ----------
    origin
        (row, col) of the tile's top-left pixel in the image.
    labels
        (h, w) int label image of the tile (0 = background).
    scores
        Optional (n + 1,) float score per label value (index 0 unused); painting order on conflicts.
    """

    origin: tuple[int, int]
    labels: np.ndarray
    scores: np.ndarray | None = None

    @property
    def extent(self) -> tuple[int, int, int, int]:
        r, c = self.origin
        return r, c, r + self.labels.shape[0], c + self.labels.shape[1]


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _objects(tile: TileLabels) -> list[tuple[np.ndarray, tuple[int, int], float]]:
    from scipy import ndimage as ndi

    out = []
    lab = tile.labels
    for value, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None:
            continue
        mask = lab[sl] == value
        score = (
            float(tile.scores[value])
            if tile.scores is not None and value < len(tile.scores)
            else float(mask.sum())
        )
        out.append((mask, (tile.origin[0] + sl[0].start, tile.origin[1] + sl[1].start), score))
    return out


def merge_tiles(
    tiles: list[TileLabels], image_shape: tuple[int, int], *, min_shared: float = 0.5, dtype=np.int32
) -> np.ndarray:
    """One (H, W) label image from overlapping tiles, seam-crossing objects joined into one label.

    Parameters
    ----------
    tiles
        The tiles' labels, each placed at its origin.
    image_shape
        (H, W) of the whole image.
    min_shared
        Two objects of different tiles are one object when their intersection is at least this
        fraction of the smaller of their parts inside the two tiles' common region.
    """
    objs: list[tuple[np.ndarray, tuple[int, int], float]] = []
    owner: list[int] = []
    for t, tile in enumerate(tiles):
        for o in _objects(tile):
            objs.append(o)
            owner.append(t)
    n = len(objs)
    uf = _UnionFind(n)
    boxes = np.array(
        [(r, c, r + m.shape[0], c + m.shape[1]) for m, (r, c), _ in objs], dtype=np.int64
    ).reshape(-1, 4)
    owner_arr = np.array(owner, dtype=np.int64)
    for i in range(n):
        # candidates: objects of other tiles whose boxes intersect this one's
        b = boxes[i]
        hit = (
            (boxes[:, 0] < b[2])
            & (boxes[:, 2] > b[0])
            & (boxes[:, 1] < b[3])
            & (boxes[:, 3] > b[1])
            & (owner_arr != owner_arr[i])
            & (np.arange(n) > i)
        )
        for j in np.flatnonzero(hit):
            ti, tj = tiles[owner[i]].extent, tiles[owner[j]].extent
            common = (max(ti[0], tj[0]), max(ti[1], tj[1]), min(ti[2], tj[2]), min(ti[3], tj[3]))
            a_in = _restrict(objs[i], common)
            b_in = _restrict(objs[j], common)
            smaller = min(a_in.sum(), b_in.sum())
            if smaller == 0:
                continue
            if np.logical_and(a_in, b_in).sum() >= min_shared * smaller:
                uf.union(i, int(j))
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(uf.find(i), []).append(i)
    masks, offsets, scores = [], [], []
    for members in groups.values():
        r0 = min(int(boxes[i, 0]) for i in members)
        c0 = min(int(boxes[i, 1]) for i in members)
        r1 = max(int(boxes[i, 2]) for i in members)
        c1 = max(int(boxes[i, 3]) for i in members)
        m = np.zeros((r1 - r0, c1 - c0), dtype=bool)
        for i in members:
            mi, (r, c), _ = objs[i]
            m[r - r0 : r - r0 + mi.shape[0], c - c0 : c - c0 + mi.shape[1]] |= mi
        masks.append(m)
        offsets.append((r0, c0))
        scores.append(max(objs[i][2] for i in members))
    cands = Candidates(
        masks,
        np.array(offsets, np.int64).reshape(-1, 2),
        np.array(scores, np.float32),
        np.ones(len(masks), np.float32),
        np.arange(len(masks)),
    )
    # spatial order keeps labels reproducible; conflicts (rare) go to the higher score
    order = np.lexsort((-cands.scores,))
    labels, _ = paint_labels(cands, image_shape, order=order, max_overlap=1.0, dtype=dtype)
    return labels


def _restrict(obj, region) -> np.ndarray:
    """The object's mask over ``region`` (r0, c0, r1, c1) of the image, as a bool array of that size."""
    mask, (r, c), _ = obj
    r0, c0, r1, c1 = region
    out = np.zeros((max(r1 - r0, 0), max(c1 - c0, 0)), dtype=bool)
    rr0, cc0 = max(r, r0), max(c, c0)
    rr1, cc1 = min(r + mask.shape[0], r1), min(c + mask.shape[1], c1)
    if rr1 > rr0 and cc1 > cc0:
        out[rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0] = mask[rr0 - r : rr1 - r, cc0 - c : cc1 - c]
    return out


def overlap_matrix(a: np.ndarray, b: np.ndarray, measure: str = "iou") -> np.ndarray:
    """(A + 1, B + 1) overlap of the labels of two label images of one shape (row/column 0: background).

    ``measure``: ``"iou"`` (intersection over union) or ``"smaller"`` (intersection over the smaller
    object's area: 1 when one object lies within the other, as the cross-sections of a round object
    seen through widely spaced planes do).
    """
    if measure == "iou":
        return iou_matrix(a, b)
    if measure != "smaller":
        raise ValueError(f"measure must be 'iou' or 'smaller'; got {measure!r}")
    x = np.asarray(a).ravel().astype(np.int64)
    y = np.asarray(b).ravel().astype(np.int64)
    n_a, n_b = int(x.max(initial=0)) + 1, int(y.max(initial=0)) + 1
    inter = np.bincount(x * n_b + y, minlength=n_a * n_b).reshape(n_a, n_b).astype(np.float64)
    smaller = np.minimum(inter.sum(axis=1)[:, None], inter.sum(axis=0)[None, :])
    return inter / np.maximum(smaller, 1.0)


def _match(score: np.ndarray, ids: np.ndarray, allowed: set[int], threshold: float) -> dict[int, int]:
    """Greedy one-to-one matches (best first) of ``ids`` (rows) to ``allowed`` columns above threshold."""
    pairs = [
        (score[a, b], int(a), int(b))
        for a in ids
        for b in np.flatnonzero(score[a] >= threshold)
        if b != 0 and int(b) in allowed
    ]
    out: dict[int, int] = {}
    used: set[int] = set()
    for _, a, b in sorted(pairs, reverse=True):
        if a in out or b in used:
            continue
        out[a] = b
        used.add(b)
    return out


def link_planes(
    planes: np.ndarray, min_iou: float = 0.3, dtype=np.int32, *, measure: str = "iou", max_gap: int = 0
) -> np.ndarray:
    """(Z, H, W) per-plane labels → (Z, H, W) 3D labels with one id per object through the planes.

    Objects of plane z are linked to objects of plane z - 1 by their overlap (best pairs first, one to
    one, at least ``min_iou``); with ``max_gap`` > 0, objects still unlinked are then linked to objects
    last seen up to ``max_gap`` planes further back (an object missed on a plane or two keeps its id);
    unlinked objects start new ids. Ids are 1..N in order of first appearance.

    Parameters
    ----------
    measure
        ``"iou"`` or ``"smaller"`` (:func:`overlap_matrix`); the latter suits anisotropic stacks, whose
        objects change size quickly from plane to plane.
    """
    planes = np.asarray(planes)
    if planes.ndim != 3:
        raise ValueError(f"link_planes needs (Z, H, W) labels, got shape {planes.shape}")
    if max_gap < 0:
        raise ValueError(f"max_gap must be ≥ 0; got {max_gap}")
    out = np.zeros(planes.shape, dtype=dtype)
    next_id = 1
    for z in range(planes.shape[0]):
        cur = planes[z]
        ids = np.unique(cur)
        ids = ids[ids != 0]
        mapping: dict[int, int] = {}
        seen: set[int] = set()
        for back in range(1, max_gap + 2):
            if z - back < 0 or not ids.size:
                break
            prev = out[z - back]
            prev_ids = set(int(v) for v in np.unique(prev)) - {0}
            allowed = prev_ids - seen - set(mapping.values())
            seen |= prev_ids
            todo = np.array([a for a in ids if int(a) not in mapping], dtype=np.int64)
            if not todo.size or not allowed:
                continue
            mapping.update(_match(overlap_matrix(cur, prev, measure), todo, allowed, min_iou))
        for a in ids:
            if int(a) not in mapping:
                mapping[int(a)] = next_id
                next_id += 1
        lut = np.zeros(int(cur.max(initial=0)) + 1, dtype=dtype)
        for a, v in mapping.items():
            lut[a] = v
        out[z] = lut[cur]
    return out
