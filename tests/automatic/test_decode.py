import numpy as np

from napari_sam.automatic.decode import decode_window
from napari_sam.io.samples import blobs
from napari_sam.segmenter import Segmenter


def test_cropped_decoding_matches_the_segmenter(lite_medsam):
    img, truth = blobs((96, 96), [(30, 30), (64, 60)], [10, 12])
    seg = Segmenter(lite_medsam, zoom=False)
    seg.set_image(img)
    boxes = np.array([[19, 19, 41, 41], [51, 47, 77, 73]], float)
    ref = seg.predict(box=boxes)
    window = ref.windows[0]
    crops = decode_window(lite_medsam, seg.embeddings.get(window), window, img.shape, boxes_rc=boxes)
    for k, crop in enumerate(crops):
        ours = np.zeros(img.shape, bool)
        r, c = crop.offset
        ours[r : r + crop.logits.shape[1], c : c + crop.logits.shape[2]] = crop.logits[0] > 0
        agree = (ours == ref.masks[k]).mean()
        assert agree > 0.995
        assert abs(float(crop.scores[0]) - float(ref.scores[k, 0])) < 1e-4


def test_region_of_interest_mode_is_exact_and_goes_through_the_models_decoder(lite_medsam):
    import torch

    from napari_sam.models.mask_decoder import TokenRegions

    img, _ = blobs((96, 96), [(30, 30), (64, 60)], [10, 12])
    seg = Segmenter(lite_medsam, zoom=False)
    seg.set_image(img)
    window = seg.whole_window
    emb = seg.embeddings.get(window)
    net = lite_medsam.network
    boxes = torch.tensor([[100.0, 100.0, 400.0, 420.0], [600.0, 500.0, 800.0, 760.0]])
    full, iou = net.decode(emb, boxes=boxes)
    regions = TokenRegions(rows=(5, 30), cols=(4, 28), height=24, width=26)
    roi, roi_iou = net.decode(emb, boxes=boxes, regions=regions)
    assert roi.shape == (2, 1, 4 * 24, 4 * 26)
    for i, (r, c) in enumerate(zip(regions.rows, regions.cols)):
        block = full[i, :, 4 * r : 4 * (r + 24), 4 * c : 4 * (c + 26)]
        assert float((roi[i] - block).abs().max()) < 1e-4  # the upscaler is local: same logits
    assert torch.equal(iou, roi_iou)

    calls = []
    hook = net.mask_decoder.register_forward_hook(
        lambda mod, args, kwargs, out: calls.append(kwargs), with_kwargs=True
    )
    try:
        decode_window(lite_medsam, emb, window, img.shape, boxes_rc=np.array([[19, 19, 41, 41.0]]))
    finally:
        hook.remove()
    assert len(calls) == 1 and isinstance(calls[0]["regions"], TokenRegions)


def test_a_pixel_spanning_several_logits_gets_its_footprints_mean():
    from napari_sam.automatic.decode import _interp_matrix

    pos = np.array([0.0, 3.25, 10.0, 19.0])
    point = _interp_matrix(pos, 20).numpy()
    assert np.allclose(point.sum(1), 1.0)
    assert np.isclose(point[1, 3], 0.75) and np.isclose(point[1, 4], 0.25)
    assert np.array_equal(_interp_matrix(pos, 20, footprint=0.5).numpy(), point)  # pixels finer than cells

    spread = _interp_matrix(pos, 20, footprint=6.0).numpy()
    assert np.allclose(spread.sum(1), 1.0)
    line = np.zeros(20, np.float32)
    line[12] = 1.0  # a thin structure 2 cells from the pixel's centre, inside its 6-cell footprint
    assert point[2] @ line == 0.0
    assert np.isclose(spread[2] @ line, 1 / 6, atol=0.02)  # one cell of six
    assert spread[2, :7].sum() == 0.0 and spread[2, 14:].sum() == 0.0  # nothing beyond the footprint
