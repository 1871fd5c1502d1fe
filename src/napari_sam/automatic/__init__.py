"""Automatic ("segment everything") instance segmentation.

Two modes, chosen per model by ``spec.auto_mode`` and both selectable:

* ``"points"``: SAM's point grid (point-trained models: SAM, MobileSAM);
* ``"boxes"``: classical box proposals answered as box prompts (box-trained models: LiteMedSAM, MedSAM).

>>> from napari_sam.automatic import segment_everything, segment_stack
"""
from __future__ import annotations

from .box_mode import BoxModeParams
from .everything import segment_everything
from .metrics import f1_score, match_scores
from .point_grid import PointGridParams
from .stack import segment_stack

__all__ = ["segment_everything", "segment_stack", "BoxModeParams", "PointGridParams", "f1_score", "match_scores"]
