"""Geometry: napari (row, col) to SAM (x, y), square windows, the zoom rule and the tile grid."""
