"""Binary messages between the widget's Python side and its JavaScript: tiles and mask crops.

Every message is a small JSON header plus raw byte buffers (never JSON lists of pixels):

* ``tile``: header ``{type, kind, level, i, j, h, w, c, gen, empty}``; one buffer, (h, w[, c]) uint8 display
  pixels (``kind="image"``) or (h, w) int32 little-endian label ids (``kind="labels"``: the committed objects,
  ``kind="found"``: those found for review; none when ``empty``).
* ``prediction``: header ``{type, seq, candidates: [{row, col, h, w, score, area}], selected}``; one buffer
  per candidate, its bbox-tight mask crop bit-packed row-major (``numpy.packbits``, big bit order), placed
  at image pixel (row, col).
"""

from __future__ import annotations

import numpy as np

from napari_sam.geometry.coords import mask_bbox
from napari_sam.prediction.result import Prediction


def pack_mask(mask: np.ndarray) -> tuple[dict, bytes]:
    """Crop a (h, w) bool mask to its bounding box and bit-pack it.

    Returns
    -------
    header
        ``{"row", "col", "h", "w", "area"}``: the crop's top-left pixel relative to ``mask``, its size and
        its pixel count (h = w = 0 for an empty mask).
    payload
        ``ceil(h * w / 8)`` bytes, row-major, most significant bit first.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"a mask is (h, w); got shape {mask.shape}")
    bbox = mask_bbox(mask)
    if bbox is None:
        return {"row": 0, "col": 0, "h": 0, "w": 0, "area": 0}, b""
    r0, c0, r1, c1 = bbox
    crop = mask[r0 : r1 + 1, c0 : c1 + 1]
    return (
        {"row": r0, "col": c0, "h": int(crop.shape[0]), "w": int(crop.shape[1]), "area": int(crop.sum())},
        np.packbits(crop.ravel()).tobytes(),
    )


def unpack_mask(header: dict, payload: bytes, shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`pack_mask` onto an (H, W) bool canvas (used by tests and for debugging)."""
    out = np.zeros(shape, dtype=bool)
    h, w = header["h"], header["w"]
    if h and w:
        bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8), count=h * w).astype(bool)
        out[header["row"] : header["row"] + h, header["col"] : header["col"] + w] = bits.reshape(h, w)
    return out


def prediction_message(pred: Prediction, seq: int, selected: int, k: int = 0) -> tuple[dict, list[bytes]]:
    """Header and buffers carrying every candidate of object ``k`` of ``pred`` in image coordinates."""
    candidates, buffers = [], []
    crops, (row0, col0) = pred.crops[k], pred.offsets[k]
    for m in range(pred.num_candidates):
        header, payload = pack_mask(crops[m])
        header["row"] += int(row0)
        header["col"] += int(col0)
        header["score"] = float(pred.scores[k, m])
        candidates.append(header)
        buffers.append(payload)
    return {"type": "prediction", "seq": seq, "candidates": candidates, "selected": int(selected)}, buffers


def tile_message(
    kind: str, level: int, i: int, j: int, tile: np.ndarray, gen: int
) -> tuple[dict, list[bytes]]:
    """Header and buffer for one image (uint8) or labels / found (int32) tile."""
    h, w = int(tile.shape[0]), int(tile.shape[1])
    c = int(tile.shape[2]) if tile.ndim == 3 else 1
    header = {
        "type": "tile",
        "kind": kind,
        "level": level,
        "i": i,
        "j": j,
        "h": h,
        "w": w,
        "c": c,
        "gen": gen,
        "empty": False,
    }
    if kind != "image":  # label ids: the committed objects ("labels") or those found for review ("found")
        if not tile.any():
            header["empty"] = True
            return header, []
        return header, [np.ascontiguousarray(tile, dtype="<i4").tobytes()]
    return header, [np.ascontiguousarray(tile, dtype=np.uint8).tobytes()]
