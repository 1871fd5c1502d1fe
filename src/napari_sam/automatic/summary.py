"""How an automatic segmentation read the image, and why it found nothing: sentences both front ends and
the CLI show.
"""

from __future__ import annotations

from collections.abc import Iterable

FILTER_SETTINGS = ("polarity", "pred_iou_thresh", "stability_thresh", "min_area", "max_area")


def _strip(text: str) -> str:
    text = str(text).strip()
    for part in ("no objects: ", ": no objects"):
        text = text.replace(part, "")
    return text


def why_empty(info: dict | Iterable[dict]) -> str:
    """The reason an empty result is empty, from :func:`~napari_sam.automatic.segment_everything`'s info
    (or the infos of the planes searched), without a leading "no objects".

    A reason the core recorded (a constant image, nothing standing out of the noise) comes first; then
    "no proposals" (advice: polarity, size range); else how many candidate masks the filters refused,
    with the settings that did it (advice: lower thresholds, another size range).
    """
    infos = [info] if isinstance(info, dict) else list(info)
    for one in infos:
        if one.get("empty"):
            return _strip(one["empty"])
    decoded = sum(int(one.get("decoded", 0) or 0) for one in infos)
    if not decoded:
        return "no candidate object stands out of the image (no proposals); check the polarity and size range"
    p = infos[0].get("parameters", {}) if infos else {}
    settings = ", ".join(f"{k} {p[k]}" for k in FILTER_SETTINGS if p.get(k) is not None)
    return (
        f"none of the {decoded} candidate masks passed the filters"
        + (f" ({settings})" if settings else "")
        + "; try lower thresholds or another size range"
    )


def describe_reading(info: dict | Iterable[dict]) -> str:
    """How box proposals read the image, from :func:`~napari_sam.automatic.segment_everything`'s info (or
    the first plane's of several), e.g. "dark objects in the haematoxylin stain, about 25 px across,
    uneven background flattened, answered at zoom 10×" (the zoom when the model chose it; "noisy image
    denoised" where it was; how many outlines moved out to the image's edges; a predicted-IoU threshold
    lowered where the model scores the examples or the image's typical objects low); "" for the point
    grid or an image that was not read.
    """
    infos = [info] if isinstance(info, dict) else list(info)
    one = next((i for i in infos if i.get("polarity")), None)
    if one is None:
        return ""
    channel = one.get("channel", "gray")
    where = "in the haematoxylin stain" if channel == "haematoxylin" else "on their surroundings"
    parts = [f"{one['polarity']} objects {where}"]
    if one.get("object_diameter"):
        parts.append(f"about {float(one['object_diameter']):.0f} px across")
    if one.get("small_diameter"):
        parts.append(f"and smaller ones about {float(one['small_diameter']):.0f} px")
    if one.get("denoised"):
        ratio = one.get("contrast_to_noise")
        parts.append("noisy image denoised" + (f" (objects {float(ratio):.1f}× the noise)" if ratio else ""))
    if one.get("flattened"):
        parts.append("uneven background flattened")
    if one.get("zoom_scores"):
        parts.append(f"answered at zoom {float(one['zoom_factor']):g}×")
    moved = sum(int(i.get("outlines_moved") or 0) for i in infos)  # every plane's
    if moved:
        parts.append(f"{moved} outline{'s' if moved != 1 else ''} moved out to the image's edges")
    threshold = one.get("score_threshold")
    if threshold is not None and threshold < one.get("parameters", {}).get("pred_iou_thresh", 0.7) - 1e-6:
        from_examples = one.get("score_threshold_from") == "examples"
        basis = "the examples" if from_examples else "this image's typical objects"
        parts.append(f"predicted IoU ≥ {float(threshold):.2f}, as the model scores {basis}")
    applied, wanted = one.get("stability_applied"), one.get("stability_set")
    if applied is not None and wanted is not None and applied < wanted - 1e-6:
        parts.append(f"stability ≥ {float(applied):.2f} for objects this small (rim allowance)")
    return ", ".join(parts)
