"""The napari front end of napari-sam (npe2 plugin): annotator, segment-everything and batch widgets,
Labels writers, an annotation-folder reader and sample data. The only Qt/napari code of the package.

Entry points are named in ``napari.yaml``; importing this package imports neither Qt nor torch.
"""
