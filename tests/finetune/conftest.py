"""A real short fine-tune of LiteMedSAM on a crop of the stardist nuclei, shared by the tests."""

from __future__ import annotations

import numpy as np
import pytest

CROP = (slice(0, 256), slice(0, 256))  # about 70 nuclei: enough to train on and hold some out


@pytest.fixture(scope="session")
def nuclei_crop(nuclei_data) -> tuple[np.ndarray, np.ndarray]:
    img, lab = nuclei_data
    return np.ascontiguousarray(img[CROP]), np.ascontiguousarray(lab[CROP])


@pytest.fixture(scope="session")
def tuned(nuclei_crop, tmp_path_factory):
    """Two epochs of fine-tuning (about 28 steps of 4 objects; the whole-image window, no augmented copies),
    saved to a folder. Bounded by steps, not time, so a busy machine gives the same model, later.
    """
    from napari_sam.finetune import finetune

    img, lab = nuclei_crop
    seen = []
    model = finetune(
        img,
        lab,
        minutes=30.0,
        max_epochs=2,
        zoom=False,
        augment=0,
        seed=0,
        batch_size=4,
        device="cpu",
        progress=seen.append,
    )
    path = model.save(tmp_path_factory.mktemp("tuned") / "model")
    return model, path, seen
