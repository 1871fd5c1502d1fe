"""The persistent embedding cache: tile embeddings of an image (or stack) in a zarr folder.

Layout of ``CACHE.zarr``::

    attrs["napari_sam"]   {"format", "version", "key", "signature", "instance"}
    embeddings            (P, T, 256, h, w) float16 (or float32), one chunk per tile
    checksums             (P, T) uint64, blake2b-64 of each finished tile's stored bytes
    done                  (P, T) uint8, 1 once the tile's embedding and checksum are completely written

P is the number of planes (1 for a 2D image) and T the number of tiles of the grid. The cache is
*keyed* by a signature (model and checkpoint hash, preprocessing with the global intensity scaling,
tile grid and halo, store dtype and a fingerprint of the data): opening it with another signature
rebuilds it (never silently reuses stale embeddings). A tile's flag is written only after its
embedding, and zarr writes every chunk atomically (temporary file + rename), so an interrupted run
resumes where it stopped and nothing half-written is ever taken as done.

What is read is checked: a tile whose bytes no longer match its checksum (overwritten, deleted, or a
chunk that does not decode) is flagged not done, encoded again and never served; the first such tile
of a store is reported with a warning. Every change to the folder (creating, rebuilding, writing tiles
and flags) happens under a lock file beside it (:class:`~napari_sam.embeddings.folder_lock.FolderLock`,
taken over from a dead holder) and only after checking that the folder is still the cache this store
opened (its random ``instance``): a process whose cache was rebuilt by another for another image stops
writing to it (with a warning) instead of mixing its embeddings into the other's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import uuid
from pathlib import Path

import numpy as np

from napari_sam.embeddings.folder_lock import FolderLock
from napari_sam.io.atomic import atomic_path

log = logging.getLogger(__name__)

FORMAT = "napari-sam embeddings"
VERSION = 2  # 2: per-tile checksums and an instance id
PREPROCESSING_VERSION = "rgb255-scale-resize-bilinear-aa-normalise-pad/1"  # bump when preprocessing changes
FINGERPRINT_BAND = 256  # rows per hashed band: the fingerprint does not depend on the data's chunks


# -- fingerprint ---------------------------------------------------------------------------------
def _band_digest(block: np.ndarray) -> np.ndarray:
    """blake2b-128 of one band's bytes (C order, little endian), as a (1, 16) uint8 row."""
    block = np.ascontiguousarray(block)
    if block.dtype.byteorder == ">":
        block = block.astype(block.dtype.newbyteorder("<"))
    return np.frombuffer(hashlib.blake2b(block.data, digest_size=16).digest(), dtype=np.uint8)[None]


def fingerprint(data) -> str:
    """A content hash of an array of shape (P, H, ...) computed band by band, never whole in memory.

    The array is cut into bands of :data:`FINGERPRINT_BAND` rows of each plane; each band is hashed
    (in parallel with dask for lazy data) and the digests are hashed in order with the shape and
    dtype. The result does not depend on how the data is chunked or whether it is numpy or dask.

    Parameters
    ----------
    data
        (P, H, W[, C]) numpy, dask or zarr array (a 2D image as P = 1).
    """
    shape = tuple(int(s) for s in data.shape)
    head = hashlib.blake2b(
        json.dumps({"shape": shape, "dtype": np.dtype(data.dtype).newbyteorder("<").str}).encode(),
        digest_size=16,
    )
    p, h = shape[0], shape[1]
    if isinstance(data, np.ndarray):
        body = b"".join(
            _band_digest(data[i, r : r + FINGERPRINT_BAND]).tobytes()
            for i in range(p)
            for r in range(0, h, FINGERPRINT_BAND)
        )
    else:
        import dask

        from napari_sam.io.images import as_dask

        x = as_dask(data)
        # read groups of whole source chunks (each chunk once), hash them in bands of fixed height
        group = max(FINGERPRINT_BAND, -(-max(x.chunks[1]) // FINGERPRINT_BAND) * FINGERPRINT_BAND)
        tasks = [
            dask.delayed(_group_digests)(x[i, r : r + group]) for i in range(p) for r in range(0, h, group)
        ]
        body = b"".join(dask.compute(*tasks, scheduler="threads"))
    head.update(body)
    return head.hexdigest()


def _group_digests(block: np.ndarray) -> bytes:
    block = np.asarray(block)
    return b"".join(
        _band_digest(block[r : r + FINGERPRINT_BAND]).tobytes()
        for r in range(0, block.shape[0], FINGERPRINT_BAND)
    )


def tile_checksum(value: np.ndarray) -> int:
    """blake2b-64 of one tile's stored bytes (C order), as an unsigned integer (never 0: 0 means none)."""
    digest = hashlib.blake2b(np.ascontiguousarray(value).data, digest_size=8).digest()
    return int.from_bytes(digest, "little") or 1


def signature_key(signature: dict) -> str:
    """sha256 of the signature's canonical JSON."""
    return hashlib.sha256(json.dumps(signature, sort_keys=True, default=str).encode()).hexdigest()


def diff_signatures(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted names of the signature entries that differ (to say why a cache was rebuilt)."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += diff_signatures(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(prefix + k)
    return out


# -- the store -----------------------------------------------------------------------------------
class EmbeddingStore:
    """Tile embeddings of P planes × T tiles in a zarr folder; see the module docstring.

    Use :meth:`open`. Attributes: ``path``, ``signature``, ``status`` (``"new"``, ``"resumed"``,
    ``"complete"`` or ``"rebuilt"``), ``changed`` (the signature entries that made a rebuild).
    """

    def __init__(self, path: Path, root, signature: dict, status: str, changed: list[str]) -> None:
        self.path = path
        self._root = root
        self.signature = signature
        self.status = status
        self.changed = changed
        self.embeddings = root["embeddings"]
        self.done_array = root["done"]
        self.checksum_array = root["checksums"]
        self.instance = root.attrs["napari_sam"]["instance"]
        self.detached = False  # True once the folder was replaced by another writer
        self.damaged: list[tuple[int, int, str]] = []  # tiles that failed their check: (plane, tile, why)
        self._lock = threading.RLock()
        self._folder_lock = FolderLock(path)
        self._done = np.asarray(self.done_array[...], dtype=bool)  # (P, T) flags mirrored in memory
        self._sums = np.asarray(self.checksum_array[...], dtype=np.uint64)  # (P, T) checksums, mirrored
        self._done &= self._sums != 0

    # -- opening -----------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        signature: dict,
        planes: int,
        tiles: int,
        embedding_shape: tuple[int, int, int] = (256, 64, 64),
        dtype: str = "float16",
    ) -> EmbeddingStore:
        """Open the cache at ``path`` for ``signature``, creating or rebuilding it as needed.

        Parameters
        ----------
        path
            A local folder (conventionally ``*.zarr``); created if missing.
        signature
            JSON-able dict that identifies the embeddings (see :func:`signature_key`).
        planes, tiles
            P and T.
        embedding_shape
            (C, h, w) of one tile's embedding.
        dtype
            ``"float16"`` (half the disk; what is served is always this precision) or ``"float32"``.

        Raises
        ------
        ValueError
            ``path`` exists and is not a napari-sam embedding cache (it is never deleted then), or
            another process holds its lock for longer than the lock's timeout.
        """
        path = Path(path).expanduser()
        signature = json.loads(json.dumps(signature, default=str))  # as it reads back from disk
        try:
            with FolderLock(path):
                return cls._open_locked(path, signature, planes, tiles, embedding_shape, dtype)
        except PermissionError as err:
            raise ValueError(
                f"cannot write the embedding cache {path} ({err.strerror}); choose a writable place"
            ) from None
        except (NotADirectoryError, FileExistsError) as err:
            raise ValueError(f"cannot create the embedding cache {path}: {err}") from None

    @classmethod
    def _open_locked(cls, path, signature, planes, tiles, embedding_shape, dtype) -> EmbeddingStore:
        import zarr

        key = signature_key(signature)
        status, changed = "new", []
        if path.exists():
            meta = cls._read_meta(path)
            if meta is None:
                raise ValueError(
                    f"{path} exists and is not a napari-sam embedding cache; choose another cache path "
                    f"(e.g. image.embeddings.zarr) or delete it"
                )
            if meta.get("key") == key and meta.get("version") == VERSION:
                try:
                    root = zarr.open_group(str(path), mode="r+")
                    store = cls(path, root, signature, "resumed", [])
                    if store.done_array.shape == (planes, tiles):
                        store.status = "complete" if store._done.all() else "resumed"
                        return store
                except Exception as err:  # unreadable pieces: rebuild
                    log.warning("embedding cache %s is damaged (%s); rebuilding it", path, err)
            changed = diff_signatures(meta.get("signature", {}), signature) or ["format"]
            log.warning("embedding cache %s is stale (changed: %s); rebuilding it", path, ", ".join(changed))
            status = "rebuilt"
        root = cls._create(path, signature, key, planes, tiles, embedding_shape, dtype)
        return cls(path, root, signature, status, changed)

    @staticmethod
    def _read_meta(path: Path) -> dict | None:
        meta_file = path / "zarr.json"
        if not meta_file.is_file():
            return None
        try:
            meta = json.loads(meta_file.read_text()).get("attributes", {}).get("napari_sam")
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            return None
        return meta

    @staticmethod
    def _create(
        path: Path,
        signature: dict,
        key: str,
        planes: int,
        tiles: int,
        embedding_shape: tuple[int, int, int],
        dtype: str,
    ):
        """Build an empty cache under a temporary name next to ``path``, then swap it in."""
        import zarr

        if dtype not in ("float16", "float32"):
            raise ValueError(f"cache dtype must be 'float16' or 'float32'; got {dtype!r}")
        with atomic_path(path, folder=True) as tmp:  # an empty cache, swapped in whole
            root = zarr.open_group(str(tmp), mode="w")
            root.create_array(
                "embeddings",
                shape=(planes, tiles, *embedding_shape),
                dtype=dtype,
                chunks=(1, 1, *embedding_shape),
                fill_value=0,
            )
            root.create_array("done", shape=(planes, tiles), dtype="uint8", chunks=(1, tiles), fill_value=0)
            root.create_array(
                "checksums", shape=(planes, tiles), dtype="uint64", chunks=(1, tiles), fill_value=0
            )
            root.attrs["napari_sam"] = {
                "format": FORMAT,
                "version": VERSION,
                "key": key,
                "signature": signature,
                "instance": uuid.uuid4().hex,
            }
        return zarr.open_group(str(path), mode="r+")

    # -- tiles -------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """(P, T)."""
        return self._done.shape

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.embeddings.dtype)

    def is_done(self, plane: int, tile: int) -> bool:
        return not self.detached and bool(self._done[plane, tile])

    def done_mask(self, plane: int | None = None) -> np.ndarray:
        """(P, T) or (T,) bool copy of the flags."""
        return (self._done if plane is None else self._done[plane]).copy()

    def count_done(self) -> int:
        return int(self._done.sum())

    def read(self, plane: int, tile: int) -> np.ndarray | None:
        """The (C, h, w) embedding of a finished tile, or None if it is not done.

        A tile that does not decode or whose bytes do not match its checksum is flagged not done (so it
        is encoded again) and None is returned; it is never served.
        """
        if not self.is_done(plane, tile):
            return None
        try:
            value = np.asarray(self.embeddings[plane, tile])
        except Exception as err:  # a damaged chunk: the codec's own error types
            why = f"{type(err).__name__}: {err}"
        else:
            if tile_checksum(value) == int(self._sums[plane, tile]):
                return value
            with self._lock, self._folder_lock:  # another writer may have re-encoded it: look again
                if self._still_ours():
                    self._reload_row(plane)
            if self._done[plane, tile] and tile_checksum(value) == int(self._sums[plane, tile]):
                return value
            why = "its bytes do not match its checksum"
        self._invalidate(plane, tile, why)
        return None

    def write(self, plane: int, tiles: list[int], values: np.ndarray) -> None:
        """Store (len(tiles), C, h, w) embeddings of one plane, then their checksums and done flags.

        Nothing is written once the folder was replaced by another writer (``detached``).
        """
        if self.detached:  # closed or replaced: do not even take the folder's lock (it would remake it)
            return
        values = np.asarray(values, dtype=self.dtype)
        sums = [tile_checksum(v) for v in values]
        with self._lock, self._folder_lock:
            if not self._still_ours():
                return
            self._reload_row(plane)  # keep what other writers of this same cache finished meanwhile
            for t, v in zip(tiles, values):
                self.embeddings[plane, t] = v
            self._sums[plane, tiles] = sums
            self._done[plane, tiles] = True
            self.checksum_array[plane] = self._sums[plane]
            self.done_array[plane] = self._done[plane].astype(np.uint8)

    def close(self) -> None:
        """Stop using the folder (before it is deleted): tiles read as not done, writes are dropped."""
        with self._lock:
            self.detached = True

    # -- checks ------------------------------------------------------------------------------------
    def _still_ours(self) -> bool:
        """Whether the folder is still the cache this store opened (call under the folder lock)."""
        if self.detached:
            return False
        meta = self._read_meta(self.path) or {}
        if meta.get("instance") == self.instance:
            return True
        self.detached = True
        if not Path(self.path).exists():
            log.warning(
                "embedding cache %s was deleted; this session keeps its embeddings in memory", self.path
            )
            return False
        log.warning(
            "embedding cache %s was rebuilt by another process (for other data or settings); this "
            "session stops writing to it and keeps its embeddings in memory",
            self.path,
        )
        return False

    def _reload_row(self, plane: int) -> None:
        """Merge the flags and checksums on disk for ``plane`` into the mirrors (under the locks)."""
        done = np.asarray(self.done_array[plane], dtype=bool)
        sums = np.asarray(self.checksum_array[plane], dtype=np.uint64)
        self._done[plane] = done & (sums != 0)
        self._sums[plane] = sums

    def _invalidate(self, plane: int, tile: int, why: str) -> None:
        """Flag a tile that failed its check as not done, on disk too; warn for the first one."""
        with self._lock:
            if not self.damaged:
                log.warning(
                    "embedding cache %s: tile %d of plane %d is damaged (%s); it is encoded again "
                    "(further damaged tiles of this cache are re-encoded without a warning)",
                    self.path,
                    tile,
                    plane,
                    why,
                )
            self.damaged.append((plane, tile, why))
            with self._folder_lock:
                if self._still_ours():
                    self._reload_row(plane)
                    self._done[plane, tile] = False
                    self._sums[plane, tile] = 0
                    self.checksum_array[plane] = self._sums[plane]
                    self.done_array[plane] = self._done[plane].astype(np.uint8)
            self._done[plane, tile] = False
