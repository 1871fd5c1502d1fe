"""The prompts of one object, the one type every front end builds (:class:`Prompts`), the checks that
build it (:mod:`~napari_sam.prompts.checks`) and its one saved record (:mod:`~napari_sam.prompts.records`).
"""

from napari_sam.prompts.object_prompts import DecoderRequest, Prompts
from napari_sam.prompts.records import RECORD_VERSION, decode_mask, encode_mask

__all__ = ["DecoderRequest", "Prompts", "RECORD_VERSION", "decode_mask", "encode_mask"]
