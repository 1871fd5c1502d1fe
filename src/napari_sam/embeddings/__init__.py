"""Image embeddings: model inputs, batched window encoding, the in-memory cache and the zarr store."""
