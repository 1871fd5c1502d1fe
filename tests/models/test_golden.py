"""Numerical equivalence with the peer implementations (official segment-anything, MobileSAM, LiteMedSAM).

Tolerances from tests/golden/README.md: embeddings 2e-2 (stored as float16), logits 5e-2, masks IoU ≥ 0.995,
IoU predictions 2e-3.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_sam.models.registry import MODELS
from napari_sam.models.sam import SamNetwork
from napari_sam.models.tiny_vit import TinyViTConfig, TinyViTImageEncoder
from napari_sam.models.vit import ViTConfig, ViTImageEncoder

EMB_TOL, LOGIT_TOL, IOU_TOL, MASK_IOU = 2e-2, 5e-2, 2e-3, 0.995


def _floats(state: dict) -> dict:
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


def _check_logits(ours: torch.Tensor, ref: np.ndarray) -> None:
    ours = ours.float().numpy()
    ref = ref.astype(np.float32)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < LOGIT_TOL
    flat_o, flat_r = ours.reshape(-1, *ours.shape[-2:]), ref.reshape(-1, *ref.shape[-2:])
    assert min(_mask_iou(o, r) for o, r in zip(flat_o, flat_r)) >= MASK_IOU


def test_vit_encoder_matches_official(golden_dir):
    cfg_json = json.loads((golden_dir / "meta.json").read_text())["vit_tiny_config"]
    cfg = ViTConfig(**{**cfg_json, "global_attn_indexes": tuple(cfg_json["global_attn_indexes"])})
    encoder = ViTImageEncoder(cfg)
    encoder.load_state_dict(
        _floats(torch.load(golden_dir / "sam_vit_tiny_random.pt", weights_only=True)), strict=True
    )
    encoder.eval()
    ref = np.load(golden_dir / "sam_vit_tiny_random.npz")
    with torch.inference_mode():
        out = encoder(torch.from_numpy(ref["input"].astype(np.float32)))
    assert out.shape == ref["embedding"].shape
    assert np.abs(out.numpy() - ref["embedding"].astype(np.float32)).max() < EMB_TOL


@pytest.mark.parametrize("folded", [False, True], ids=["batchnorm", "folded"])
def test_mobilesam_tinyvit_matches_reference(golden_dir, folded):
    c = json.loads((golden_dir / "meta.json").read_text())["tinyvit_small_config"]
    cfg = TinyViTConfig(
        img_size=c["img_size"],
        embed_dims=tuple(c["embed_dims"]),
        depths=tuple(c["depths"]),
        num_heads=tuple(c["num_heads"]),
        window_sizes=tuple(c["window_sizes"]),
        mlp_ratio=c["mlp_ratio"],
        mbconv_expand_ratio=c["mbconv_expand_ratio"],
        local_conv_size=c["local_conv_size"],
        stem="stride4",
    )
    encoder = TinyViTImageEncoder(cfg)
    encoder.load_state_dict(
        _floats(torch.load(golden_dir / "mobilesam_tinyvit_random.pt", weights_only=True)), strict=True
    )
    encoder.eval()
    if folded:
        encoder.prepare_for_inference()
    ref = np.load(golden_dir / "mobilesam_tinyvit_random.npz")
    x = (torch.from_numpy(ref["input_uint8"].astype(np.float32)) / 255 - 0.5) / 0.25
    with torch.inference_mode():
        out = encoder(x)
    assert np.abs(out.numpy() - ref["embedding"].astype(np.float32)).max() < EMB_TOL


@pytest.fixture(scope="module")
def lite_ref(golden_dir):
    return np.load(golden_dir / "lite_medsam_nuclei.npz")


def test_lite_medsam_encoder_matches_reference(lite_medsam, lite_ref):
    with torch.inference_mode():
        emb = lite_medsam.network.image_encoder(torch.from_numpy(lite_ref["input"]))
    assert np.abs(emb.numpy() - lite_ref["embedding"].astype(np.float32)).max() < EMB_TOL


def test_lite_medsam_box_prompts(lite_medsam, lite_ref):
    emb = torch.from_numpy(lite_ref["embedding"].astype(np.float32))
    logits, iou = lite_medsam.network.decode(
        emb, boxes=torch.from_numpy(lite_ref["boxes_xyxy"]), multimask=False
    )
    _check_logits(logits, lite_ref["box_logits"])
    assert np.abs(iou.numpy() - lite_ref["box_iou"]).max() < IOU_TOL


def test_reused_image_terms_change_no_answer(lite_medsam, lite_ref):
    """The decoder keeps the prompt-independent image terms of the last embeddings: the second prompt
    on an embedding (answered from that cache) still matches the reference, and a different embedding
    is not answered from it."""
    net = lite_medsam.network
    decoder = net.mask_decoder
    emb = torch.from_numpy(lite_ref["embedding"].astype(np.float32))
    boxes = torch.from_numpy(lite_ref["boxes_xyxy"])
    first, _ = net.decode(emb, boxes=boxes[:1])
    assert id(emb) in decoder._prepared_cache
    again, iou = net.decode(emb, boxes=boxes)  # answered with the kept terms
    _check_logits(again, lite_ref["box_logits"])
    assert np.abs(iou.numpy() - lite_ref["box_iou"]).max() < IOU_TOL
    assert torch.equal(net.decode(emb, boxes=boxes[:1])[0], first)
    other = emb.flip(-1).contiguous()  # another image
    flipped, _ = net.decode(other, boxes=boxes[:1])
    assert not torch.allclose(flipped, first)
    with torch.inference_mode():
        sparse, dense = net.prompt_encoder(None, boxes[:1], None)
        direct, _ = decoder(other, net.prompt_encoder.get_dense_pe(), sparse, dense, False)  # no reuse
    assert torch.equal(flipped, direct)
    assert len(decoder._prepared_cache) <= decoder.prepared_cache_size


def test_lite_medsam_point_prompts_multimask(lite_medsam, lite_ref):
    emb = torch.from_numpy(lite_ref["embedding"].astype(np.float32))
    xy = torch.from_numpy(lite_ref["points_xy"])[:, None, :]
    labels = torch.ones(len(xy), 1, dtype=torch.int64)
    logits, iou = lite_medsam.network.decode(emb, points=(xy, labels), multimask=True)
    _check_logits(logits, lite_ref["point_multimask_logits"])
    assert np.abs(iou.numpy() - lite_ref["point_multimask_iou"]).max() < IOU_TOL


def test_lite_medsam_points_box_and_mask_prompt(lite_medsam, lite_ref):
    emb = torch.from_numpy(lite_ref["embedding"].astype(np.float32))
    points = (
        torch.from_numpy(lite_ref["combo_points_xy"]),
        torch.from_numpy(lite_ref["combo_labels"]).long(),
    )
    box = torch.from_numpy(lite_ref["boxes_xyxy"][:1])
    mask = torch.from_numpy(lite_ref["box_logits"][:1].astype(np.float32))
    logits, iou = lite_medsam.network.decode(emb, points=points, boxes=box, mask_logits=mask, multimask=False)
    _check_logits(logits, lite_ref["combo_logits"])
    assert np.abs(iou.numpy() - lite_ref["combo_iou"]).max() < IOU_TOL


@pytest.mark.parametrize("name", ["sam_vit_b", "sam_vit_l", "sam_vit_h", "mobilesam_vit_t", "lite_medsam"])
def test_state_dict_keys_match_official_manifest(golden_dir, name):
    manifest = json.loads((golden_dir / "state_dict_manifests.json").read_text())[name]
    with torch.device("meta"):
        net = SamNetwork(MODELS[name].encoder)
    ours = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert ours == manifest
