"""A drawn mask (a polygon, an ellipse, a brush stroke) as a SAM prompt: its box plus low-res logits.

SAM's mask prompt is a (1, 256, 256) logit image in the frame of the window the object is decoded
from (the S×S model input, padded bottom/right). :func:`mask_to_logits` puts a full-resolution
boolean mask into that frame; :func:`mask_prompt` picks the window the segmenter would use for the
mask's bounding box and returns keyword arguments for :meth:`Segmenter.predict`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from napari_sam.embeddings.preprocess import resized_extent
from napari_sam.geometry.coords import mask_bbox
from napari_sam.geometry.windows import Window
from napari_sam.prediction.result import Prediction

LOWRES = 256  # side of SAM's mask-prompt / low-res logits grid


def mask_to_logits(mask: np.ndarray, window: Window, input_size: int, strength: float = 8.0) -> np.ndarray:
    """(H, W) bool image mask → (1, 256, 256) float32 logits in ``window``'s low-res frame.

    Parameters
    ----------
    mask
        (H, W) bool mask over the whole image.
    window
        The window the object will be decoded from.
    input_size
        The model's input side S (the window is resized by ``S / window.size``).
    strength
        Logit magnitude: inside ≈ +strength, outside ≈ −strength (padding is outside).
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W); got shape {mask.shape}")
    h, w, rh, rw = resized_extent(window, mask.shape, input_size)
    crop = mask[window.row0 : window.row0 + h, window.col0 : window.col0 + w].astype(np.float32)
    lh = max(1, min(LOWRES, int(round(rh * LOWRES / input_size))))
    lw = max(1, min(LOWRES, int(round(rw * LOWRES / input_size))))
    t = torch.from_numpy(np.ascontiguousarray(crop))[None, None]
    shrink = min(lh / max(h, 1), lw / max(w, 1))
    small = F.interpolate(t, size=(lh, lw), mode="bilinear", align_corners=False, antialias=shrink < 0.5)
    frame = torch.zeros((1, LOWRES, LOWRES), dtype=torch.float32)
    frame[0, :lh, :lw] = small[0, 0]
    return ((frame * 2.0 - 1.0) * strength).numpy()


def mask_prompt(
    segmenter, mask: np.ndarray, strength: float = 8.0, with_logits: bool = True, box=None
) -> dict:
    """Prompt keyword arguments for ``segmenter.predict`` from an (H, W) bool mask.

    Returns ``{"box": (min_row, min_col, max_row, max_col)}`` (the mask's bounding box, or ``box`` when
    given) plus, with ``with_logits``, ``"mask_input"``: a :class:`Prediction` carrying the mask, the
    logits and the window they belong to (the window ``segmenter`` answers that box from).
    ``ValueError`` for an empty mask.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != tuple(segmenter.image_shape):
        raise ValueError(f"mask shape {mask.shape} does not match the image's {tuple(segmenter.image_shape)}")
    bbox = mask_bbox(mask)
    if bbox is None:
        raise ValueError("the mask prompt is empty: draw a polygon or ellipse over the object")
    out: dict = {"box": bbox if box is None else tuple(box)}
    if not with_logits:
        return out
    size = segmenter.model.input_size
    if hasattr(segmenter, "window_for_box"):  # tiles and seams of large images are handled there
        window = segmenter.window_for_box(out["box"])
    else:
        window = segmenter.zoom.window_for(out["box"], segmenter.image_shape, size) or segmenter.whole_window
    logits = mask_to_logits(mask, window, size, strength)
    r0, c0, r1, c1 = bbox
    crop = mask[r0 : r1 + 1, c0 : c1 + 1][None]
    out["mask_input"] = Prediction(
        [crop], [(r0, c0)], np.ones((1, 1), np.float32), logits[None], [window], tuple(segmenter.image_shape)
    )
    return out
