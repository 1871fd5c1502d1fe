"""Small Qt choosers shared by the widgets: image- and labels-layer combo boxes that follow the
viewer's layer list, and the model and device combo boxes.
"""

from __future__ import annotations

from qtpy.QtWidgets import QComboBox

DEVICES = ("auto", "cpu", "cuda", "mps")


class ImageLayerCombo(QComboBox):
    """The viewer's Image layers by name, kept up to date as layers come and go."""

    def __init__(self, viewer, parent=None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.refresh()
        viewer.layers.events.inserted.connect(self.refresh)
        viewer.layers.events.removed.connect(self.refresh)
        self.destroyed.connect(self._disconnect)

    def _disconnect(self, *_) -> None:
        for ev in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            try:
                ev.disconnect(self.refresh)
            except (RuntimeError, TypeError, ValueError):
                pass

    def refresh(self, *_) -> None:
        from napari.layers import Image

        current = self.currentText()
        names = [layer.name for layer in self.viewer.layers if isinstance(layer, Image)]
        self.blockSignals(True)
        self.clear()
        self.addItems(names)
        active = self.viewer.layers.selection.active
        if current in names:
            self.setCurrentText(current)
        elif isinstance(active, Image):
            self.setCurrentText(active.name)
        self.blockSignals(False)

    def layer(self):
        """The chosen layer, or None."""
        name = self.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None  # noqa: SIM401 (LayerList has no get)


class LabelsLayerCombo(ImageLayerCombo):
    """The viewer's Labels layers by name, kept up to date as layers come and go.

    Parameters
    ----------
    viewer
        The napari viewer.
    exclude_suffixes
        Layers whose name ends with one of these are not offered (e.g. the annotator's own layers).
    none_text
        If given, a first item with this text that stands for no layer (:meth:`layer` returns None).
    prefer_suffix
        Until the user picks a layer, a layer whose name ends with this is chosen whenever there is one
        (e.g. the annotator's committed objects, " SAM objects").
    """

    def __init__(
        self,
        viewer,
        parent=None,
        *,
        exclude_suffixes: tuple[str, ...] = (),
        none_text=None,
        prefer_suffix: str | None = None,
    ) -> None:
        super().__init__(viewer, parent)  # (its first refresh runs before the settings below)
        self._exclude, self._none_text, self._prefer = tuple(exclude_suffixes), none_text, prefer_suffix
        self._user_chose = False
        self.activated.connect(self._on_user_choice)  # emitted for the user's choices only
        self.clear()  # start from the first item: "none" when there is one
        self.refresh()

    def _on_user_choice(self, *_) -> None:
        self._user_chose = True

    def refresh(self, *_) -> None:
        from napari.layers import Labels

        exclude = getattr(self, "_exclude", ())
        none_text = getattr(self, "_none_text", None)
        current = self.currentText()
        names = [
            layer.name
            for layer in self.viewer.layers
            if isinstance(layer, Labels) and not (exclude and layer.name.endswith(exclude))
        ]
        items = ([none_text] if none_text is not None else []) + names
        prefer = getattr(self, "_prefer", None)
        if prefer and not getattr(self, "_user_chose", False):
            current = next((n for n in names if n.endswith(prefer)), current)
        self.blockSignals(True)
        self.clear()
        self.addItems(items)
        if current in items:
            self.setCurrentText(current)
        self.blockSignals(False)

    def layer(self):
        """The chosen layer, or None (also for the ``none_text`` item)."""
        if self._none_text is not None and self.currentIndex() <= 0:
            return None
        return super().layer()


def model_combo() -> QComboBox:
    """Editable: a registered model name or the path of a checkpoint file."""
    from napari_sam.models.registry import DEFAULT_MODEL, MODELS

    combo = QComboBox()
    combo.setEditable(True)
    combo.addItems(list(MODELS))
    combo.setCurrentText(DEFAULT_MODEL)
    combo.setToolTip("A registered model, or the path of a SAM-family checkpoint file")
    return combo


def device_combo() -> QComboBox:
    combo = QComboBox()
    combo.addItems(list(DEVICES))
    return combo
