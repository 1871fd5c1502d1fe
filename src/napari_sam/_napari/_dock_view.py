"""Docking a widget narrows napari's canvas, so an image fitted before stands off its right edge; the
view is fitted again once the dock has been laid out (the first time it is shown).
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtCore import QEvent, QObject, QTimer


class ResetViewOnFirstShow(QObject):
    """Fit the viewer's view to its layers (``viewer.reset_view()``) after ``widget`` is first shown.

    Parameters
    ----------
    widget
        The dock widget (the filter is its child and goes with it).
    viewer_of
        Returns the viewer, or None (asked when the widget shows, so a subclass may set it later).
    delay_ms
        Wait after the show event, so the dock's layout has resized the canvas.
    """

    def __init__(self, widget, viewer_of: Callable[[], object], delay_ms: int = 50) -> None:
        super().__init__(widget)
        self._viewer_of = viewer_of
        self._delay_ms = delay_ms
        self.done = False
        widget.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt)
        if event.type() == QEvent.Type.Show and not self.done:
            self.done = True
            obj.removeEventFilter(self)
            QTimer.singleShot(self._delay_ms, self._reset)
        return False

    def _reset(self) -> None:
        viewer = self._viewer_of()
        if viewer is not None and len(viewer.layers):
            viewer.reset_view()
