"""Sub-commands of the napari-sam command line."""
