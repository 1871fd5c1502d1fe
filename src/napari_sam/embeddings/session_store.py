"""The tile-embedding store of a session's image: the persistent zarr cache a user names, or a temporary
one, opened under the signature that says which embeddings it may hold.

The signature names the model (its image encoder's checkpoint and precision, input size, pixel
normalisation), the preprocessing (its version, the intensity scaling, the channels), the tile grid and
the data (shape, dtype, stack axis and a fingerprint of the pixels). A cache written under another
signature is rebuilt, never reused (:class:`~napari_sam.embeddings.store.EmbeddingStore`).
"""

from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np

from napari_sam.embeddings.store import PREPROCESSING_VERSION, EmbeddingStore, fingerprint
from napari_sam.finetune.identity import encoder_identity
from napari_sam.geometry.tiling import TileGrid
from napari_sam.image.planes import PlaneSource
from napari_sam.models.loading import SamModel


def store_signature(model: SamModel, source: PlaneSource, grid: TileGrid, temporary: bool) -> dict:
    """What embeddings in a store must have been made from (JSON-friendly); a temporary store skips the
    pixels' fingerprint (it lives as long as the session, on this image only).
    """
    spec = model.spec
    return {
        "model": {
            "name": spec.name,
            # the checkpoint whose image encoder runs: a decoder-only fine-tune reuses its base's cache
            "checkpoint_sha256": encoder_identity(model),
            # bf16 embeddings differ slightly from fp32 ones (fp32 caches keep their old signature)
            **({"precision": model.precision} if model.precision != "fp32" else {}),
            "input_size": spec.input_size,
            "pixel_mean": list(spec.pixel_mean),
            "pixel_std": list(spec.pixel_std),
            "encoder": repr(spec.encoder),
        },
        "preprocessing": {
            "version": PREPROCESSING_VERSION,
            "scaling": source.scaling.to_dict(),
            "channel_axis": source.layout.channel_axis,
            "channels": list(source.layout.channels),
        },
        "grid": grid.to_dict(),
        "data": {
            "shape": [int(v) for v in source.data.shape],
            "dtype": str(np.dtype(source.data.dtype)),
            "stack_axis": source.stack_axis,
            "fingerprint": "temporary" if temporary else fingerprint(source.data),
        },
    }


def open_session_store(
    model: SamModel,
    source: PlaneSource,
    grid: TileGrid,
    cache: str | os.PathLike | None,
    dtype: str = "float16",
) -> tuple[EmbeddingStore, bool]:
    """The store for ``source``'s tiles on ``grid``: the cache folder ``cache`` (reopened when it matches,
    resumed when unfinished, rebuilt when stale), or with ``cache`` None a new temporary one. Returns the
    store and whether it is temporary (the caller removes it with :func:`remove_temporary_store`).
    """
    temporary = cache is None
    if temporary:
        cache = os.path.join(tempfile.mkdtemp(prefix="napari-sam-"), "embeddings.zarr")
    signature = store_signature(model, source, grid, temporary)
    store = EmbeddingStore.open(cache, signature, source.num_planes, len(grid), dtype=dtype)
    return store, temporary


def remove_temporary_store(store: EmbeddingStore) -> None:
    """Delete a session's temporary embedding cache: the store stops using the folder first, so a
    background tile finishing afterwards is kept in memory quietly rather than reported as a cache
    "rebuilt by another process".
    """
    store.close()
    shutil.rmtree(os.path.dirname(store.path), ignore_errors=True)
