"""Candidates larger than the typical object rank lower (:mod:`napari_sam.automatic.size_rank`)."""

import numpy as np
import pytest

from napari_sam.automatic.size_rank import LARGER_ALLOWANCE, size_weights, typical_area


def test_weights_fall_in_proportion_past_the_allowance():
    w = size_weights(np.array([50, 100, 125, 250, 500]), 100.0)
    assert w.dtype == np.float32
    assert w[:3].tolist() == [1.0, 1.0, 1.0]  # up to 1.25 typical objects
    assert w[3] == pytest.approx(LARGER_ALLOWANCE / 2.5) and w[4] == pytest.approx(LARGER_ALLOWANCE / 5)
    assert size_weights(np.array([10, 1000]), 0.0).tolist() == [1.0, 1.0]  # no typical size: no effect


def test_the_typical_area_is_the_reference_candidates_median():
    areas = np.array([90, 100, 110, 400, 5])
    assert typical_area(areas, np.array([True, True, True, False, False])) == 100.0
    assert typical_area(areas, np.zeros(5, bool)) == 0.0


@pytest.mark.slow
def test_a_mask_over_two_objects_loses_to_the_single_objects(lite_medsam, nuclei_data, nuclei_everything):
    """On the real nuclei (bf16 on the AVX-512 BF16 machine: 6 masks over two nuclei each without it, 4
    with it; F1 0.915 → 0.941); the reading records the typical area."""
    from napari_sam.automatic import match_scores, segment_everything

    img, truth = nuclei_data
    labels, info = nuclei_everything
    off = segment_everything(img, model=lite_medsam, params={"size_ranking": False})
    area = info["typical_area"]
    assert 150 < area < 900  # nuclei of about 20–30 px across

    def merged(lab):  # painted objects covering most of two ground-truth nuclei
        count = 0
        for i in np.unique(lab)[1:]:
            m = lab == i
            ids, n = np.unique(truth[m], return_counts=True)
            sizes = {k: (truth == k).sum() for k in ids if k}
            count += sum(n[j] > 0.5 * sizes[k] for j, k in enumerate(ids) if k) >= 2
        return count

    assert merged(labels) < merged(off)
    assert match_scores(labels, truth)["f1"] > match_scores(off, truth)["f1"]
    with pytest.raises(ValueError, match="size_ranking"):
        segment_everything(img[:64, :64], model=lite_medsam, params={"size_ranking": "yes"})
