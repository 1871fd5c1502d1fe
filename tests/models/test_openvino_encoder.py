"""The image encoder through OpenVINO: which backend ``auto`` picks, the exported encoder kept in the cache
(and made again when the weights change), and torch taking over where OpenVINO cannot run it. Its quality
bar on the real nuclei is in ``test_precision.py``.
"""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch

from napari_sam.embeddings.encoder import encode_batch
from napari_sam.models import openvino_encoder as ovenc
from napari_sam.models.device import bf16_support, resolve_precision
from napari_sam.models.loading import load_model
from napari_sam.models.openvino_encoder import OpenVinoEncoder, openvino_available, resolve_backend
from napari_sam.models.registry import get_spec

pytest.importorskip("openvino", reason="the openvino extra is installed by make; without it nothing runs")

CPU_BF16 = bf16_support("cpu")[0]
AUTO_BF16 = resolve_precision("auto", "cpu") == "bf16"
CPU = torch.device("cpu")


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_auto_picks_openvino_only_where_it_was_measured_faster():
    lite, vit_b = get_spec("lite_medsam"), get_spec("sam_vit_b")
    assert openvino_available()[0]
    assert resolve_backend("auto", CPU, "bf16", lite) == "openvino"
    assert resolve_backend("auto", CPU, "fp32", lite) == "torch"
    assert resolve_backend("auto", CPU, "bf16", vit_b) == "torch"  # not measured: torch
    assert resolve_backend("auto", torch.device("cuda"), "bf16", lite) == "torch"
    assert resolve_backend("openvino", CPU, "fp32", vit_b) == "openvino"  # asked for: any encoder
    assert resolve_backend("TORCH", CPU, "bf16", lite) == "torch"
    expected = "openvino" if AUTO_BF16 else "torch"
    assert load_model("lite_medsam", device="cpu").backend == expected
    assert load_model("lite_medsam", device="cpu", precision="fp32").backend == "torch"


def test_bad_backends_are_refused_with_the_fix(monkeypatch):
    lite = get_spec("lite_medsam")
    with pytest.raises(ValueError, match="unknown backend 'onnx'.*auto, torch, openvino"):
        resolve_backend("onnx", CPU, "bf16", lite)
    on_the_cpu = "runs the image encoder on the CPU.*device='cpu' or backend='torch'"
    with pytest.raises(ValueError, match=on_the_cpu):
        resolve_backend("openvino", torch.device("cuda"), "bf16", lite)
    with pytest.raises(ValueError, match="compile=True.*backend='openvino'"):
        load_model("lite_medsam", device="cpu", backend="openvino", compile=True)
    # a machine without the package: asked for, it says how to install it; auto quietly keeps torch
    monkeypatch.setattr(ovenc, "openvino_available", lambda: (False, "the openvino package is not installed"))
    with pytest.raises(ValueError, match="not installed.*napari-sam\\[openvino\\].*backend='torch'"):
        resolve_backend("openvino", CPU, "bf16", lite)
    assert resolve_backend("auto", CPU, "bf16", lite) == "torch"


def test_the_export_is_kept_in_the_cache_and_follows_the_weights(tmp_path, monkeypatch):
    model = load_model("lite_medsam", device="cpu", precision="fp32", backend="torch")
    encoder = model.network.image_encoder
    x = torch.rand(2, 3, 256, 256) * 4 - 2
    torch_out = encode_batch(model, x)

    first = OpenVinoEncoder(tmp_path)
    out = first(encoder, x, "fp32")
    assert out.shape == torch_out.shape and out.dtype == torch.float32
    assert _relative_error(out, torch_out) < 1e-4  # fp32 in OpenVINO is fp32
    exported = list((tmp_path / "openvino").iterdir())
    assert [p.name for p in exported] == [ovenc.weights_key(encoder, 256)]
    assert sorted(f.name for f in exported[0].iterdir()) == ["encoder.bin", "encoder.xml"]

    # a new process (a new encoder object) compiles from the cache: exporting again would fail here
    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the cache holds this encoder")

    monkeypatch.setattr(ovenc, "_export", no_export)
    again = OpenVinoEncoder(tmp_path)
    assert torch.equal(again(encoder, x, "fp32"), out)
    monkeypatch.undo()

    # weights changed in place (as a fine-tune merging adapters does): exported again, new numbers
    with torch.no_grad():
        encoder.neck[0].weight.add_(0.05 * torch.randn_like(encoder.neck[0].weight))
    changed = again(encoder, x, "fp32")
    assert again.failed is None
    assert _relative_error(changed, out) > 1e-3
    assert _relative_error(changed, encode_batch(model, x)) < 1e-4
    assert len(list((tmp_path / "openvino").iterdir())) == 2
    assert not [p for p in (tmp_path / "openvino").iterdir() if p.name.startswith(".")]  # no staging left


def test_torch_takes_over_where_openvino_cannot_run_the_encoder(tmp_path, monkeypatch, lite_medsam):
    def broken(*args, **kwargs):
        raise RuntimeError("Cannot convert this model\nmore detail")

    monkeypatch.setattr(ovenc, "_export", broken)
    model = dataclasses.replace(
        lite_medsam, precision="fp32", backend="openvino", openvino_encoder=OpenVinoEncoder(tmp_path)
    )
    x = torch.rand(1, 3, 256, 256)
    with pytest.warns(RuntimeWarning, match="OpenVINO could not run the image encoder.*Cannot convert"):
        out = encode_batch(model, x)
    torch_model = dataclasses.replace(lite_medsam, precision="fp32", openvino_encoder=None, backend="torch")
    assert torch.equal(out, encode_batch(torch_model, x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, then torch quietly
        encode_batch(model, x)
    assert not (tmp_path / "openvino").exists() or not any((tmp_path / "openvino").iterdir())


def test_a_hooked_encoder_runs_in_torch(tmp_path):
    """Forward hooks watch or change the torch module (a test counting encoder passes, a feature probe):
    with one attached, the torch encoder runs; without, OpenVINO again.
    """
    model = load_model("lite_medsam", device="cpu", precision="fp32", backend="torch")
    model = dataclasses.replace(model, backend="openvino", openvino_encoder=OpenVinoEncoder(tmp_path))
    x = torch.rand(1, 3, 256, 256)
    seen = []
    hook = model.network.image_encoder.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    encode_batch(model, x)
    assert seen == [(1, 256, 64, 64)] and not (tmp_path / "openvino").exists()
    hook.remove()
    encode_batch(model, x)
    assert seen == [(1, 256, 64, 64)] and len(list((tmp_path / "openvino").iterdir())) == 1


@pytest.mark.skipif(not AUTO_BF16, reason="auto runs fp32 in torch on this CPU: nothing to export")
def test_models_fetch_exports_the_encoder_so_the_first_image_does_not_wait(tmp_path, capsys):
    """``make`` runs ``napari-sam models fetch lite_medsam``: where ``auto`` picks OpenVINO, the export
    lands in the cache then, and a model loaded later compiles it without exporting again.
    """
    import os

    from napari_sam._cli import main as cli
    from napari_sam.models.checkpoints import cache_dir

    (tmp_path / "checkpoints").symlink_to(cache_dir() / "checkpoints")  # the weights, not their export
    assert cli.main(["models", "fetch", "lite_medsam", "--cache-dir", str(tmp_path)]) == 0
    assert "image encoder ready for OpenVINO" in capsys.readouterr().out.splitlines()[-1]
    exported = list((tmp_path / "openvino").iterdir())
    assert len(exported) == 1 and (exported[0] / "encoder.bin").stat().st_size > 10e6
    model = load_model("lite_medsam", device="cpu", cache_dir=tmp_path)
    assert model.openvino_encoder.cache_root == tmp_path / "openvino"
    stamp = os.stat(exported[0] / "encoder.xml").st_mtime_ns
    encode_batch(model, torch.rand(1, 3, 256, 256))
    assert model.openvino_encoder.failed is None
    assert os.stat(exported[0] / "encoder.xml").st_mtime_ns == stamp
    assert list((tmp_path / "openvino").iterdir()) == exported
