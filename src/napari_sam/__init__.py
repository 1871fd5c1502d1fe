"""napari-sam: Segment Anything for microscopy and medical images.

The core (this package minus ``_napari``) imports no Qt, napari or ipywidgets.

>>> import napari_sam as ns
>>> model = ns.load_model("lite_medsam")
>>> seg = ns.Segmenter(model)
>>> seg.set_image(image)
>>> res = seg.predict(points=[(120, 80)], labels=[1])
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "load_model",
    "Segmenter",
    "Prompts",
    "Prediction",
    "ZoomRule",
    "MODELS",
    "segment_everything",
    "finetune",
    "__version__",
]


def __getattr__(name: str):
    # Lazy: importing the package (e.g. by napari's plugin discovery) must not import torch.
    if name == "load_model":
        from napari_sam.models.loading import load_model

        return load_model
    if name == "Segmenter":
        from napari_sam.segmenter import Segmenter

        return Segmenter
    if name == "Prompts":
        from napari_sam.prompts import Prompts

        return Prompts
    if name == "Prediction":
        from napari_sam.prediction.result import Prediction

        return Prediction
    if name == "ZoomRule":
        from napari_sam.geometry.windows import ZoomRule

        return ZoomRule
    if name == "segment_everything":
        from napari_sam.automatic import segment_everything

        return segment_everything
    if name == "MODELS":
        from napari_sam.models.registry import MODELS

        return MODELS
    if name == "finetune":
        from napari_sam.finetune.api import finetune

        return finetune
    raise AttributeError(f"module 'napari_sam' has no attribute {name!r}")
