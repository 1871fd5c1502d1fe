import numpy as np
import pytest

from napari_sam.automatic.filters import box_iou
from napari_sam.automatic.proposals import label_boxes, otsu_watershed, propose_boxes
from napari_sam.io.samples import blobs


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


def test_low_levels_find_dim_objects():
    from napari_sam.automatic.proposals import propose_boxes

    img = np.full((64, 64), 10.0)
    img[10:20, 10:20] = 200.0  # bright
    img[40:52, 40:52] = 60.0  # dim: below Otsu's threshold between 10 and 200
    img[12:18, 44:50] = 200.0  # a second bright one, so the threshold sits high
    plain = propose_boxes(img, sigma=0.5, diameter=10)
    low = propose_boxes(img, sigma=0.5, diameter=10, low_levels=(0.2,))

    def has_dim(p):
        return any(
            b[0] <= 41 and b[2] >= 50 and b[1] <= 41 and b[3] >= 50 and b[2] - b[0] < 20 for b in p.boxes
        )

    assert not has_dim(plain) and has_dim(low)
    with pytest.raises(ValueError, match="low_levels"):
        propose_boxes(img, low_levels=(1.5,))
