"""Automatic ("segment everything") instance segmentation.

Two modes, chosen per model by ``spec.auto_mode`` and both selectable:

* ``"points"``: SAM's point grid (point-trained models: SAM, MobileSAM);
* ``"boxes"``: classical box proposals answered as box prompts (box-trained models: LiteMedSAM, MedSAM).

>>> from napari_sam.automatic import segment_everything, segment_stack
"""

from __future__ import annotations

from napari_sam.automatic.box_mode import BoxModeParams
from napari_sam.automatic.everything import segment_everything
from napari_sam.automatic.like_committed import segment_like_committed
from napari_sam.automatic.metrics import f1_score, match_scores
from napari_sam.automatic.point_grid import PointGridParams
from napari_sam.automatic.stack import segment_stack

__all__ = [
    "segment_everything",
    "segment_stack",
    "segment_like_committed",
    "BoxModeParams",
    "PointGridParams",
    "f1_score",
    "match_scores",
]
