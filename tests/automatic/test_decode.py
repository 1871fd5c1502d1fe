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
