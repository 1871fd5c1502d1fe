"""Jupyter front end of napari-sam: prompt SAM inside a notebook.

>>> from sam_widgets import SamWidget, show_overlay
>>> w = SamWidget(image, model="lite_medsam")   # click, drag a box, Enter to commit
>>> show_overlay(image, w.labels)

The widget's JavaScript ships inside this package (``static/``); nothing is fetched from a CDN.
The core (:mod:`napari_sam`) never imports this package.
"""

from __future__ import annotations

__all__ = ["SamWidget", "show_overlay", "progress_bar"]


def __getattr__(name: str):
    # Lazy: ``import sam_widgets`` must not import torch or ipywidgets before they are needed.
    if name == "SamWidget":
        from sam_widgets.widget import SamWidget

        return SamWidget
    if name == "show_overlay":
        from sam_widgets._plot import show_overlay

        return show_overlay
    if name == "progress_bar":
        from sam_widgets._progress import progress_bar

        return progress_bar
    raise AttributeError(f"module 'sam_widgets' has no attribute {name!r}")
