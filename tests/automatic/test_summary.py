"""why_empty: one sentence for an empty automatic result."""

from napari_sam.automatic.summary import why_empty


def test_the_recorded_reason_comes_first_without_its_no_objects():
    assert why_empty({"empty": "no objects: no blob stands out of the noise"}) == (
        "no blob stands out of the noise"
    )
    assert why_empty([{"decoded": 3}, {"empty": "constant image: no objects"}]) == "constant image"


def test_no_proposals_and_refused_candidates_say_what_to_change():
    assert "no proposals" in why_empty({"decoded": 0}) and "polarity" in why_empty({"decoded": 0})
    text = why_empty({"decoded": 12, "parameters": {"pred_iou_thresh": 0.9, "polarity": "dark"}})
    assert "12 candidate masks" in text and "pred_iou_thresh 0.9" in text and "lower thresholds" in text
