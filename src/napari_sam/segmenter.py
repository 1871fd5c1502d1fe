"""The session object both front ends share: one image, its embeddings, prompts → masks.

Coordinates at this API are napari's: points (row, col), boxes (min_row, min_col, max_row, max_col).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .annotations import Annotations
from .coords import as_boxes_rc, as_points_rc, boxes_to_model_xyxy, image_to_model_xy, mask_bbox
from .embeddings import WindowEmbeddings
from .image import IntensityScaling, PreparedImage, prepare_image
from .models.loading import SamModel, load_model
from .prediction import Prediction
from .preprocess import logits_to_window_masks
from .windows import Window, ZoomRule, whole_image_window


class Segmenter:
    """Prompt SAM on one 2D image.

    Parameters
    ----------
    model
        A loaded :class:`~napari_sam.models.loading.SamModel`, a registry name or a checkpoint path
        (default: ``lite_medsam``).
    zoom
        The :class:`~napari_sam.windows.ZoomRule`; ``True`` for the default rule, ``False`` to always
        answer from the whole image.
    device
        Used only when ``model`` is a name or path.

    Examples
    --------
    >>> seg = Segmenter(load_model("lite_medsam"))
    >>> seg.set_image(image)
    >>> res = seg.predict(box=(10, 20, 40, 60))
    >>> res.masks.shape      # (1, H, W) bool
    """

    def __init__(self, model: SamModel | str | None = None, *, zoom: ZoomRule | bool = True,
                 device: str = "auto") -> None:
        if model is None or not isinstance(model, SamModel):
            model = load_model(model or "lite_medsam", device=device)
        self.model = model
        if isinstance(zoom, bool):
            zoom = ZoomRule(enabled=zoom)
        self.zoom = zoom
        self.image: PreparedImage | None = None
        self.embeddings: WindowEmbeddings | None = None
        self.last_prediction: Prediction | None = None
        self.annotations: Annotations | None = None

    # -- image -------------------------------------------------------------------------------------
    def set_image(self, image, *, channel_axis: int | None = None, scaling: IntensityScaling | None = None,
                  progress: Callable[[int, int], None] | None = None) -> None:
        """Validate and scale ``image``, then encode it as a whole (the zoom windows come on demand).

        Parameters
        ----------
        image
            (H, W), (H, W, 3|4) or multichannel with ``channel_axis``; numpy, dask or zarr; any numeric
            dtype, NaN/inf allowed.
        scaling
            A recorded :class:`~napari_sam.image.IntensityScaling` to reuse instead of computing one.
        progress
            Called as ``progress(done, total)`` while encoding.
        """
        prepared = prepare_image(image, channel_axis=channel_axis, scaling=scaling)
        self.image = prepared
        self.embeddings = WindowEmbeddings(self.model, prepared)
        self.last_prediction = None
        self.annotations = Annotations(prepared.shape)
        self.embeddings.encode([self.whole_window], progress=progress)

    @property
    def image_shape(self) -> tuple[int, int]:
        return self._require_image().shape

    @property
    def whole_window(self) -> Window:
        return whole_image_window(self._require_image().shape)

    def _require_image(self) -> PreparedImage:
        if self.image is None:
            raise ValueError("no image yet: call set_image(image) before predict()")
        return self.image

    # -- prompts → masks ---------------------------------------------------------------------------
    def predict(self, points=None, labels=None, box=None, mask_input=None, multimask: bool = False) -> Prediction:
        """Masks for prompts given in image pixels.

        Parameters
        ----------
        points
            (N, 2) (row, col) points of one object, or None.
        labels
            (N,) 1 for positive, 0 for negative points (default: all positive).
        box
            (min_row, min_col, max_row, max_col) of one object, or (K, 4) for K objects decoded as one
            batch (points, if any, then belong to a single box).
        mask_input
            (256, 256) or (1, 256, 256) low-res logits from an earlier prediction of the same object
            (``Prediction.logits[k, m]``), in that prediction's window; or that :class:`Prediction`.
        multimask
            Return the three ambiguity-aware candidates instead of one mask.

        Returns
        -------
        Prediction
            ``masks`` (K, H, W) bool (or (K, 3, H, W) with ``multimask``), ``scores`` (K, M) predicted
            IoU, ``logits`` (K, M, 256, 256).
        """
        image = self._require_image()
        pts = lab = None
        if points is not None and len(points) > 0:
            pts = as_points_rc(points)
            lab = np.ones(len(pts), dtype=np.int64) if labels is None else np.asarray(labels, dtype=np.int64).ravel()
            if lab.shape != (len(pts),):
                raise ValueError(f"labels must give one 1/0 per point: {len(pts)} points, {lab.size} labels")
            if not np.isin(lab, (0, 1)).all():
                raise ValueError(f"labels must be 1 (positive) or 0 (negative); got {sorted(set(lab.tolist()))}")
        boxes = as_boxes_rc(box) if box is not None and np.size(box) > 0 else None
        if pts is None and boxes is None:
            raise ValueError("give at least one point or a box")
        if pts is not None and boxes is not None and len(boxes) > 1:
            raise ValueError(f"points belong to one object, but {len(boxes)} boxes were given; pass one box")
        prev_window, mask_logits = self._mask_prompt(mask_input)

        if boxes is None:  # one object prompted by points
            window = prev_window or self._window_for_points(pts, lab)
            pred = self._decode_group(window, [None], pts, lab, mask_logits, multimask)
        else:
            windows = [prev_window] * len(boxes) if prev_window is not None else [
                self.zoom.window_for(b, image.shape, self.model.input_size) or self.whole_window for b in boxes]
            pred = self._decode_many(windows, boxes, pts, lab, mask_logits, multimask)
        self.last_prediction = pred
        return pred

    def _mask_prompt(self, mask_input) -> tuple[Window | None, torch.Tensor | None]:
        if mask_input is None:
            return None, None
        if isinstance(mask_input, Prediction):
            pred = mask_input
            logits = pred.logits[0, pred.best_index(0)]
            window = pred.windows[0]
        else:
            if self.last_prediction is None:
                raise ValueError("mask_input logits need an earlier prediction (their window); pass the Prediction")
            logits = np.asarray(mask_input, dtype=np.float32)
            window = self.last_prediction.windows[0]
        logits = np.asarray(logits, dtype=np.float32).reshape(-1, *np.shape(logits)[-2:])
        if logits.shape != (1, 256, 256):
            raise ValueError(f"mask_input must be low-res logits of shape (256, 256); got {logits.shape}")
        return window, torch.from_numpy(logits)[None].to(self.model.device)

    def _window_for_points(self, pts: np.ndarray, lab: np.ndarray) -> Window:
        """Zoom for point prompts: the whole-image answer tells the object's size."""
        whole = self.whole_window
        if not self.zoom.enabled:
            return whole
        first = self._decode_group(whole, [None], pts, lab, None, multimask=False)
        bbox = mask_bbox(first.crops[0][0])
        positives = pts[lab == 1] if (lab == 1).any() else pts
        if bbox is None:  # nothing found at this scale: look closer around the points
            r0, c0 = positives.min(axis=0)
            r1, c1 = positives.max(axis=0)
            bbox = (r0, c0, r1, c1)
        else:
            r, c = first.offsets[0]
            bbox = (bbox[0] + r, bbox[1] + c, bbox[2] + r, bbox[3] + c)
        window = self.zoom.window_for(bbox, self.image_shape, self.model.input_size)
        if window is None or not all(window.contains_box((p[0], p[1], p[0], p[1])) for p in positives):
            return whole
        return window

    def _decode_many(self, windows: list[Window], boxes: np.ndarray, pts, lab, mask_logits, multimask) -> Prediction:
        """Decode K boxes, grouped by window so each embedding is used by one batched decoder call."""
        order: dict[Window, list[int]] = {}
        for i, w in enumerate(windows):
            order.setdefault(w, []).append(i)
        parts: dict[int, tuple] = {}
        for window, idx in order.items():
            group = self._decode_group(window, [boxes[i] for i in idx], pts, lab, mask_logits, multimask)
            for j, i in enumerate(idx):
                parts[i] = (group.crops[j], group.offsets[j], group.scores[j], group.logits[j])
        k = len(boxes)
        return Prediction([parts[i][0] for i in range(k)], [parts[i][1] for i in range(k)],
                          np.stack([parts[i][2] for i in range(k)]), np.stack([parts[i][3] for i in range(k)]),
                          list(windows), self.image_shape)

    @torch.inference_mode()
    def _decode_group(self, window: Window, boxes: list, pts, lab, mask_logits, multimask: bool) -> Prediction:
        """One decoder call for B objects sharing ``window`` (B = number of boxes, or 1 for points only)."""
        s = self.model.input_size
        scale = window.scale(s)
        origin = (window.row0, window.col0)
        dev = self.model.device
        b = len(boxes)
        point_arg = None
        if pts is not None:
            xy = torch.as_tensor(image_to_model_xy(pts, origin, scale), dtype=torch.float32, device=dev)
            point_arg = (xy[None].expand(b, -1, -1), torch.as_tensor(lab, device=dev)[None].expand(b, -1))
        box_arg = None
        if boxes[0] is not None:
            box_arg = torch.as_tensor(boxes_to_model_xyxy(np.stack(boxes), origin, scale), dtype=torch.float32,
                                      device=dev)
        masks_arg = None if mask_logits is None else mask_logits.expand(b, -1, -1, -1)
        emb = self.embeddings.get(window)
        logits, iou = self.model.network.decode(emb, point_arg, box_arg, masks_arg, multimask)
        crops = logits_to_window_masks(logits, window, self.image_shape, s)
        return Prediction(list(crops), [origin] * b, iou.float().cpu().numpy(), logits.float().cpu().numpy(),
                          [window] * b, self.image_shape)

    # -- committed objects -------------------------------------------------------------------------
    @property
    def labels(self) -> np.ndarray:
        """(H, W) int32 label image of the committed objects (0 = background)."""
        self._require_image()
        return self.annotations.labels

    def commit(self, prediction: Prediction | np.ndarray | None = None, *, k: int = 0,
               candidate: int | None = None, prompts: dict | None = None) -> int:
        """Commit a mask as a new object and return its id.

        ``prediction`` is a :class:`Prediction` (object ``k``, candidate ``candidate`` or the best one),
        an (H, W) bool mask, or None for the last prediction.
        """
        self._require_image()
        prediction = self.last_prediction if prediction is None else prediction
        if prediction is None:
            raise ValueError("nothing to commit: predict() first or pass a mask")
        if isinstance(prediction, Prediction):
            m = prediction.best_index(k) if candidate is None else candidate
            mask, score = prediction.mask(k, m), float(prediction.scores[k, m])
        else:
            mask, score = np.asarray(prediction, dtype=bool), None
        return self.annotations.commit(mask, score=score, prompts=prompts)

    def undo(self) -> int | None:
        """Remove the last committed object; its id, or None when there is nothing to undo."""
        self._require_image()
        return self.annotations.undo()
