import numpy as np

from napari_sam.automatic.filters import box_iou
from napari_sam.automatic.proposals import label_boxes, otsu_watershed, propose_boxes
from napari_sam.data import blobs


def test_proposals_find_every_blob():
    centres = [(20, 20), (20, 60), (60, 30), (70, 75), (45, 100)]
    img, truth = blobs((96, 128), centres, [7, 8, 9, 6, 8])
    props = propose_boxes(img.astype(np.float32))
    best = box_iou(label_boxes(truth), props.boxes).max(axis=1)
    assert (best > 0.6).all()
    assert len(props) <= 3 * len(centres)
    assert otsu_watershed(img).max() >= len(centres) - 1


def test_blank_image_has_no_proposals():
    assert len(propose_boxes(np.zeros((32, 32), np.float32))) == 0
