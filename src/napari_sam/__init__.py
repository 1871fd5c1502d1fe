"""napari-sam: Segment Anything for microscopy and medical images."""
__version__ = "0.1.0"
