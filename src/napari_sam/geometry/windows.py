"""Square regions of an image that are encoded at the model's input size, and the zoom rule.

A :class:`Window` covers rows [row0, row0 + size) and columns [col0, col0 + size) of the image and is
resized by ``S / size`` to the model input S×S (padded bottom/right where it passes the image edge).
The whole image is the window at (0, 0) of side max(H, W); zoom windows are smaller ones around an
object; tiles of a large image are windows of side S at native resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

from napari_sam.geometry.steps import stepped_side


@dataclass(frozen=True, order=True)
class Window:
    row0: int
    col0: int
    size: int

    def scale(self, input_size: int) -> float:
        """Model pixels per image pixel."""
        return input_size / self.size

    def contains_box(self, box_rc, margin: float = 0.0) -> bool:
        r0, c0, r1, c1 = box_rc
        return (
            r0 - margin >= self.row0
            and c0 - margin >= self.col0
            and r1 + margin < self.row0 + self.size
            and c1 + margin < self.col0 + self.size
        )


def whole_image_window(shape: tuple[int, int]) -> Window:
    return Window(0, 0, int(max(shape)))


@dataclass(frozen=True)
class ZoomRule:
    """When and how a prompt is answered from a window around its object instead of the whole image.

    The rule: an object of extent ``e`` (longest side of its box, or of the mask that the whole-image
    embedding gives for a point prompt) is answered from a square window of side about
    ``factor × e`` centred on it, never smaller than ``min_upscale_window × S`` (at most
    1/min_upscale_window-fold upsampling), whenever that window is smaller than ``max_fraction`` of the
    image's longest side. Window sides come in √2 steps and origins on a grid of side/4, so nearby
    objects of similar size share a window and its cached embedding.
    """

    enabled: bool = True
    factor: float = 4.0
    min_upscale_window: float = 0.25
    max_fraction: float = 0.75

    def side_for(self, box_rc, input_size: int) -> int:
        """The zoom window side for an object with bounding box ``box_rc`` (whatever ``enabled`` says):
        about ``factor ×`` its extent in √2 steps, never below ``min_upscale_window × S``.
        """
        r0, c0, r1, c1 = (float(v) for v in box_rc)
        extent = max(r1 - r0 + 1, c1 - c0 + 1)
        floor = max(8.0, self.min_upscale_window * input_size)
        return stepped_side(max(self.factor * extent, floor), floor)

    def window_for(self, box_rc, image_shape: tuple[int, int], input_size: int) -> Window | None:
        """The zoom window for an object with bounding box ``box_rc``, or None for the whole image."""
        if not self.enabled:
            return None
        side = self.side_for(box_rc, input_size)
        if side >= self.max_fraction * max(image_shape):
            return None
        return centred_window(box_rc, image_shape, side)


def centred_window(box_rc, image_shape: tuple[int, int], side: int) -> Window:
    """A window of side ``side`` centred on ``box_rc``, its origin on a grid of side/4 (so nearby objects
    share windows and their cached embeddings), kept inside the image where it fits.
    """
    r0, c0, r1, c1 = (float(v) for v in box_rc)
    h, w = image_shape
    grid = max(1, side // 4)
    row0 = int(round(((r0 + r1) / 2 - side / 2) / grid)) * grid
    col0 = int(round(((c0 + c1) / 2 - side / 2) / grid)) * grid
    row0 = min(max(row0, 0), max(h - side, 0))
    col0 = min(max(col0, 0), max(w - side, 0))
    return Window(row0, col0, side)
