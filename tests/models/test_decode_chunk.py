"""How many prompts go through the mask decoder at once (:func:`napari_sam.models.device.decode_chunk`)."""

import numpy as np

from napari_sam.automatic.box_mode import BoxModeParams, box_candidates
from napari_sam.automatic.proposals import Proposals, label_boxes
from napari_sam.embeddings.embedder import WindowEmbeddings
from napari_sam.image.normalize import prepare_image
from napari_sam.models.device import CPU_DECODE_CHUNK, decode_chunk


def test_cpu_passes_are_capped_and_gpus_keep_what_is_asked():
    assert decode_chunk("cpu", 32) == CPU_DECODE_CHUNK == 16
    assert decode_chunk("cpu", 4) == 4 and decode_chunk("cpu", 0) == 1
    assert decode_chunk("cuda", 64) == 64  # a device name only: no GPU is needed to ask


def test_segment_everything_decodes_boxes_in_capped_passes(lite_medsam, nuclei_data):
    img, truth = nuclei_data
    image, crop = prepare_image(img[:128, :128]), truth[:128, :128]
    boxes = np.concatenate([label_boxes(crop)] * 3)  # more boxes per window than one pass takes
    passes = []
    decode = lite_medsam.decode

    def counting(embedding, points=None, boxes=None, *args, **kwargs):
        passes.append(len(boxes))
        return decode(embedding, points, boxes, *args, **kwargs)

    lite_medsam.decode = counting
    try:
        props = Proposals(boxes, np.full(len(boxes), "truth"), 0.0, 0.0)
        params = BoxModeParams(zoom_factor=7.0, batch_size=32, edge_outlines=False)
        cands, _ = box_candidates(lite_medsam, image, WindowEmbeddings(lite_medsam, image), props, params)
    finally:
        del lite_medsam.decode
    assert len(cands) == len(boxes) == sum(passes)
    assert max(passes) == CPU_DECODE_CHUNK
