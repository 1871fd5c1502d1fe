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


def test_the_reading_is_described_in_one_phrase():
    from napari_sam.automatic.summary import describe_reading

    info = {"polarity": "dark", "channel": "haematoxylin", "object_diameter": 25.4, "flattened": False}
    assert describe_reading(info) == "dark objects in the haematoxylin stain, about 25 px across"
    gray = {"polarity": "bright", "channel": "gray", "object_diameter": 9.0, "flattened": True}
    assert describe_reading([gray, info]) == (
        "bright objects on their surroundings, about 9 px across, uneven background flattened"
    )
    assert describe_reading({"mode": "points"}) == ""
    zoomed = {**gray, "flattened": False, "zoom_factor": 10.0, "zoom_scores": {"7": 0.76, "10": 0.79}}
    assert describe_reading(zoomed).endswith("about 9 px across, answered at zoom 10×")
    small = {**zoomed, "stability_applied": 0.62, "stability_set": 0.7}
    assert describe_reading(small).endswith(", stability ≥ 0.62 for objects this small (rim allowance)")
    as_set = {**zoomed, "stability_applied": 0.7, "stability_set": 0.7}
    assert describe_reading(as_set) == describe_reading(zoomed)
    outlined = {**zoomed, "outlines_moved": 12}
    assert describe_reading(outlined).endswith("zoom 10×, 12 outlines moved out to the image's edges")
    assert describe_reading({**zoomed, "outlines_moved": 0}) == describe_reading(zoomed)
    planes = [{"mode": "boxes", "outlines_moved": 3}, {**zoomed, "outlines_moved": 4}]  # a stack's planes
    assert describe_reading(planes).endswith(", 7 outlines moved out to the image's edges")
    assert describe_reading({**zoomed, "outlines_moved": 1}).endswith(
        ", 1 outline moved out to the image's edges"
    )
    like = {**zoomed, "score_threshold": 0.63, "parameters": {"pred_iou_thresh": 0.7}}
    examples = {**like, "score_threshold_from": "examples"}
    assert describe_reading(examples).endswith(", predicted IoU ≥ 0.63, as the model scores the examples")
    from_typical = {**like, "score_threshold_from": "typical objects"}
    assert describe_reading(from_typical).endswith(
        ", predicted IoU ≥ 0.63, as the model scores this image's typical objects"
    )
    assert describe_reading({**zoomed, "score_threshold": 0.7}) == describe_reading(zoomed)
