"""``SamWidget``: prompt SAM on an image inside a notebook; a thin front end over
:class:`napari_sam.Segmenter`, following its events.

The widget holds no segmentation logic: prompts from the canvas (or from Python) go to the shared
:class:`~napari_sam.segmenter.Segmenter`, masks come back from it, committed objects live in its
:class:`~napari_sam.annotations.Annotations` (the same objects the napari plugin edits and saves).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import anywidget
import numpy as np
import traitlets

from napari_sam.annotations import Annotations
from napari_sam.models import DEFAULT_MODEL
from napari_sam.prediction.result import Prediction
from napari_sam.progress import ProgressClock
from napari_sam.prompts import Prompts
from napari_sam.segmenter import Segmenter
from sam_widgets._background import BackgroundEmbedding
from sam_widgets._bundle import bundle
from sam_widgets._found import FoundObjects
from sam_widgets._messages import tile_message
from sam_widgets._progress import progress_bar
from sam_widgets._prompting import _NO_PROMPT, Prompting
from sam_widgets._tiles import TILE, TileSource, default_limits, intensity_range, tile_bounds

_STATIC = Path(__file__).parent / "static"
_MAX_TILES_PER_REQUEST = 64


class SamWidget(Prompting, FoundObjects, anywidget.AnyWidget):
    """An image canvas that segments what you click, for Jupyter (Lab, Notebook 7, VS Code).

    Mouse: click = positive point, Shift/Alt/Ctrl-click = negative point, drag = box, wheel = zoom,
    right/middle-drag (or Space-drag) = pan. Keys: Enter commits, Escape clears the prompt, Ctrl+Z
    undoes, 1/2/3 pick a candidate mask, F fits the image, E edits the committed object under the mouse
    (see :meth:`edit`).

    Parameters
    ----------
    image
        (H, W), (H, W, 3|4) or multichannel (with ``channel_axis``); numpy, dask or zarr. May be None
        when ``segmenter`` already holds an image.
    model
        A :class:`~napari_sam.models.loading.SamModel`, a registry name or a checkpoint path; ignored
        when ``segmenter`` is given.
    segmenter
        Continue an existing session (e.g. the one used in napari): its image, embeddings and
        annotations are reused. With ``image`` too, the image is replaced (and encoded).
    annotations
        Committed objects to continue from: an :class:`~napari_sam.annotations.Annotations` or a folder
        written by ``Annotations.save`` / :meth:`save` (shape must match the image).
    labels
        An existing segmentation to refine (a previous run, Cellpose, painted by hand): a label image of
        the image's shape whose objects become the committed objects, ids kept (see :meth:`edit`).
    channel_axis, stack_axis, plane, cache
        Passed to :meth:`Segmenter.set_image`: the channel axis; the plane axis of a (Z, Y, X) or
        (T, Y, X) stack (the widget then shows a plane slider) and the plane shown first; a folder for
        the tile embeddings of a large image (reopened next time, see ``docs/large_images.md``).
    encode
        True: a small image is embedded now (a second or so); a large (tiled) one is not — it can be
        prompted at once while its tiles are embedded in a background thread, those the canvas shows
        first (:meth:`stop_embedding` stops it, keeping finished tiles). False: only where prompts land
        (the first prompt in a region pays for its window).
    device, zoom
        Passed to :class:`Segmenter` when ``model`` is a name or path.
    multimask
        Ask for three candidate masks per prompt (the picker) instead of one.
    height
        Canvas height in CSS pixels.
    progress
        Show a progress bar (``tqdm.auto``) while the image is encoded.

    Examples
    --------
    >>> w = SamWidget(image, model="lite_medsam")
    >>> w                              # click on an object, press Enter to commit
    >>> w.labels                       # (H, W) int32, in the next cell
    >>> w.table()                      # one row per committed object
    >>> w = SamWidget(image, labels=cellpose_masks)   # correct an existing segmentation
    >>> w.edit(12)                     # object 12's mask is the current mask; click to correct, Enter
    """

    _esm = bundle(_STATIC / "widget.js")  # the modules of static/ joined into one ES module
    _css = _STATIC / "widget.css"

    image_shape = traitlets.List(traitlets.Int(), default_value=[0, 0]).tag(sync=True)
    channels = traitlets.Int(1).tag(sync=True)
    tile_size = traitlets.Int(TILE).tag(sync=True)
    max_level = traitlets.Int(0).tag(sync=True)
    image_version = traitlets.Int(0).tag(sync=True)
    plane = traitlets.Int(0).tag(sync=True)
    num_planes = traitlets.Int(1).tag(sync=True)
    contrast_limits = traitlets.List(
        traitlets.Float(), allow_none=True, default_value=None, minlen=2, maxlen=2
    ).tag(sync=True)
    auto_limits = traitlets.List(traitlets.Float(), default_value=[0.0, 255.0]).tag(sync=True)
    data_range = traitlets.List(traitlets.Float(), default_value=[0.0, 255.0]).tag(sync=True)
    prompt = traitlets.Dict(default_value=_NO_PROMPT).tag(sync=True)
    candidate = traitlets.Int(-1).tag(sync=True)
    # the score shown per candidate (napari_sam.prediction.quality.candidate_scores), its kind and meaning
    scores = traitlets.List(traitlets.Float(), default_value=[]).tag(sync=True)
    score_kind = traitlets.Unicode("").tag(sync=True)
    score_help = traitlets.Unicode("").tag(sync=True)
    multimask = traitlets.Bool(True).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    busy = traitlets.Bool(False).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    num_objects = traitlets.Int(0).tag(sync=True)
    labels_version = traitlets.Int(0).tag(sync=True)
    height = traitlets.Int(520).tag(sync=True)
    editing = traitlets.Int(0).tag(sync=True)  # the id of the committed object being corrected, or 0
    # the kernel's long work as the canvas shows it ("embedding 37 % · 3/8 windows · about 4 s left"), or ""
    kernel_progress = traitlets.Unicode("").tag(sync=True)
    # objects found by segment_everything / find_like_committed, outlined in the canvas until added or dropped
    num_found = traitlets.Int(0).tag(sync=True)
    found_version = traitlets.Int(0).tag(sync=True)

    def __init__(
        self,
        image=None,
        model=DEFAULT_MODEL,
        *,
        segmenter: Segmenter | None = None,
        annotations: Annotations | str | os.PathLike | None = None,
        labels=None,
        channel_axis: int | None = None,
        stack_axis: int | None = None,
        plane: int = 0,
        cache: str | os.PathLike | None = None,
        encode: bool = True,
        device: str = "auto",
        zoom: bool = True,
        multimask: bool = True,
        height: int = 520,
        progress: bool = True,
    ) -> None:
        super().__init__(multimask=bool(multimask), height=int(height))
        if segmenter is None:
            if image is None:
                raise ValueError("give an image (or a segmenter that already holds one): SamWidget(image)")
            segmenter = Segmenter(model, zoom=zoom, device=device)
        elif not isinstance(segmenter, Segmenter):
            raise ValueError(f"segmenter must be a napari_sam.Segmenter; got {type(segmenter).__name__}")
        self._segmenter = segmenter
        self._prediction: Prediction | None = None
        self._note: tuple | None = None  # (prompts, text): said with the mask of those prompts
        self._annotations: Annotations | None = None
        self._source = None
        self._seq = 0
        self._editing: Prompts | None = None  # the start of the correction of a committed object
        self._progress = progress
        self._embedding_clock: ProgressClock | None = None
        self._progress_sent = 0.0
        self._background = BackgroundEmbedding()  # a large image's tiles, view first, while prompting
        self._view: tuple[float, float, float, float] | None = None  # the canvas' region, image pixels
        self._found: np.ndarray | None = None  # objects found for review (see found)
        self._job: str | None = None  # a segment-everything job running in the kernel (its progress shows)
        self.on_msg(self._on_message)
        events = segmenter.events  # the widget follows the shared session, whoever changes it
        events.image_set.connect(self._on_image_set)
        events.embedding_progress.connect(self._on_embedding_progress)
        events.plane_changed.connect(self._on_session_plane)
        events.annotations_replaced.connect(self._on_annotations_replaced)
        if image is not None:
            self.set_image(
                image,
                channel_axis=channel_axis,
                stack_axis=stack_axis,
                plane=plane,
                cache=cache,
                encode=encode,
            )
        elif segmenter.image is None:
            raise ValueError(
                "the segmenter holds no image yet: pass image=... or call segmenter.set_image first"
            )
        else:
            self._image_ready()
        if annotations is not None:
            if labels is not None:
                raise ValueError("give annotations (a saved session) or labels (a segmentation), not both")
            self.load(annotations)
        if labels is not None:
            self.load_labels(labels)

    # -- the session -------------------------------------------------------------------------------
    @property
    def segmenter(self) -> Segmenter:
        """The shared :class:`~napari_sam.segmenter.Segmenter` (same object the napari plugin can use)."""
        return self._segmenter

    @property
    def annotations(self) -> Annotations:
        """The committed objects (:class:`~napari_sam.annotations.Annotations`)."""
        return self._segmenter.annotations

    @property
    def labels(self) -> np.ndarray:
        """(H, W) int32 label image of the committed objects (0 = background), (P, H, W) for a stack;
        the session's own array (copy it to keep a snapshot).
        """
        return self._segmenter.labels

    @property
    def objects(self) -> list[dict]:
        """The committed objects in full: dicts with id, area, bbox (min_row, min_col, max_row, max_col),
        plane, score, planes and prompts (the record of :meth:`napari_sam.prompts.Prompts.to_record`).
        """
        return self.annotations.records()

    def table(self):
        """The committed objects as a ``pandas.DataFrame``: the rows of
        :meth:`napari_sam.annotations.Annotations.table` (the same whichever front end committed them),
        indexed by id; no plane columns for a 2D image.
        """
        try:
            import pandas as pd
        except ImportError as err:  # pragma: no cover - pandas ships with the jupyter extra
            raise ImportError(
                "table() needs pandas: pip install 'napari-sam[jupyter]' (or use .objects)"
            ) from err
        columns = ["id", "plane", "planes", "area", "min_row", "min_col", "max_row", "max_col", "score"]
        columns.append("prompts")
        if self.num_planes == 1:
            columns = [c for c in columns if c not in ("plane", "planes")]
        return pd.DataFrame(self.annotations.table(), columns=columns).set_index("id")

    @property
    def prediction(self) -> Prediction | None:
        """The current (not yet committed) :class:`~napari_sam.prediction.result.Prediction`, or None."""
        return self._prediction

    @property
    def mask(self) -> np.ndarray | None:
        """(H, W) bool mask of the selected candidate of the current prediction, or None."""
        if self._prediction is None:
            return None
        return self._prediction.mask(0, self._selected())

    def set_image(
        self,
        image,
        *,
        channel_axis: int | None = None,
        stack_axis: int | None = None,
        plane: int = 0,
        cache: str | os.PathLike | None = None,
        **kwargs,
    ) -> None:
        """Show and encode a new image (prompts, prediction and committed objects start afresh).

        Keyword arguments are those of :meth:`napari_sam.Segmenter.set_image`.
        """
        encode = kwargs.pop("encode", True)
        self._background.stop()
        self._view = None
        seg = self._segmenter
        with progress_bar("embedding", enabled=self._progress) as progress:
            self.status = "embedding the image…"
            self.kernel_progress = "embedding the image …"
            try:
                seg.set_image(
                    image,
                    channel_axis=channel_axis,
                    stack_axis=stack_axis,
                    plane=plane,
                    cache=cache,
                    encode=False,
                    **kwargs,
                )
                if encode and not seg.is_tiled:  # small: embedded now (a second or so on a CPU)
                    seg.set_plane(seg.plane, encode=True, progress=progress)
            finally:
                self._embedding_clock = None
                self.kernel_progress = ""
        if encode and seg.is_tiled:  # large: prompt at once; tiles in view first, in the background
            self.resume_embedding()
            self.status = "ready: tiles are embedded in the background, those in view first"
        else:
            self.status = "ready"

    def resume_embedding(self) -> None:
        """Embed the unfinished tiles of the plane in view in a background thread, those the canvas
        shows first (what ``encode=True`` starts for a large image; after :meth:`stop_embedding`, or for
        an image opened with ``encode=False``). The kernel stays free for prompts meanwhile.
        """
        seg = self._segmenter
        if not seg.is_tiled:
            raise ValueError(
                "this image is embedded whole (it is not tiled): nothing to embed in the background"
            )
        self._background.start(seg, seg.plane, lambda: self._view, on_done=self._background_done)

    def _background_done(self, error: BaseException | None) -> None:
        if error is not None:
            self.error = f"embedding in the background stopped: {error}"

    def stop_embedding(self) -> None:
        """Stop embedding a large image in the background; finished tiles are kept (in the cache when
        one was given) and prompts elsewhere embed their own window when needed.
        """
        self._background.stop()
        self.kernel_progress = ""

    @property
    def embedding_in_background(self) -> bool:
        """Whether a large image's tiles are being embedded in the background."""
        return self._background.running

    def _on_embedding_progress(self, done: int, total: int) -> None:
        """The session embeds windows or tiles (here or in another front end): the canvas shows how far.

        Trait updates reach the browser while the kernel is busy, so the canvas can say what it waits for.
        At most ten updates a second; the line goes away when the last window is done.
        """
        if self._job is not None:  # the job's own progress line is shown meanwhile
            return
        if total <= 0 or done >= total:
            self._embedding_clock = None
            self.kernel_progress = ""
            return
        if self._embedding_clock is None or done == 0:
            self._embedding_clock = ProgressClock("windows" if self._segmenter.grid.is_single else "tiles")
        line = self._embedding_clock.text(done, total)
        now = time.monotonic()
        if now - self._progress_sent >= 0.1 or not self.kernel_progress:
            self._progress_sent = now
            self.kernel_progress = f"embedding {line}"

    def refresh(self) -> None:
        """Show the session's image, plane and objects again. Not needed in normal use: the widget follows
        the :class:`Segmenter`'s events (a new image, plane or annotations object, commits and undos),
        whichever front end or Python call made them.
        """
        seg = self._segmenter
        if seg.source is not self._source:
            self._image_ready()
            return
        if seg.plane != self.plane:
            self._on_session_plane(seg.plane)
        self._on_annotations_replaced()

    def _on_image_set(self) -> None:
        if self._segmenter.source is not self._source:
            self._image_ready()

    def _on_annotations_replaced(self) -> None:
        self._stop_editing()
        if self._segmenter.annotations is not None:
            self._watch(self._segmenter.annotations)

    def _image_ready(self) -> None:
        seg = self._segmenter
        self._source = seg.source
        image = seg.image
        self._tiles = TileSource(image, self.tile_size)
        self._stop_editing()
        self._clear_prediction()
        self._found = None
        with self.hold_sync():
            self.num_found = 0
            self.found_version += 1
            self.num_planes = seg.num_planes
            self.plane = seg.plane
            self.channels = self._tiles.channels
            self.max_level = self._tiles.max_level
            self.auto_limits = list(default_limits(image))
            self.data_range = list(intensity_range(image))
            self.contrast_limits = None
            self.prompt = _NO_PROMPT
            self.image_shape = list(image.shape)
            self.image_version += 1
        self._watch(self._segmenter.annotations)
        self.status = "ready"

    @traitlets.validate("contrast_limits")
    def _validate_limits(self, proposal):
        value = proposal["value"]
        if value is not None:
            low, high = (float(v) for v in value)
            if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
                raise ValueError(
                    f"contrast_limits must be finite (low, high) with high > low; got {list(value)}"
                )
            value = [low, high]
        return value

    @traitlets.validate("plane")
    def _validate_plane(self, proposal) -> int:
        p = int(proposal["value"])
        if not 0 <= p < self.num_planes:
            raise ValueError(f"plane {p} does not exist: this image has {self.num_planes} plane(s)")
        return p

    @traitlets.observe("plane")
    def _on_plane(self, change) -> None:
        seg = self._segmenter
        if seg.source is None or change["new"] == seg.plane:
            return
        seg.set_plane(change["new"], encode=False)  # embedded on the first prompt there; see below
        if self._background.running:  # a large image: embed the new plane's tiles instead
            self.resume_embedding()

    def _on_session_plane(self, plane: int) -> None:
        """The session moved to ``plane`` (from this widget's slider or from elsewhere)."""
        self._tiles = TileSource(self._segmenter.image, self.tile_size)
        self.plane = plane
        self.prompt = _NO_PROMPT
        self._clear_prediction()
        self.labels_version += 1
        if self._found is not None:
            self.found_version += 1  # the found objects of the new plane
        self.status = f"plane {plane}"

    def _plane_labels(self) -> np.ndarray:
        labels = self._segmenter.labels
        return labels[self._segmenter.plane] if labels.ndim == 3 else labels

    def _plane_found(self) -> np.ndarray | None:
        found = self._found
        if found is None:
            return None
        return found[self._segmenter.plane] if found.ndim == 3 else found

    def _watch(self, annotations: Annotations) -> None:
        if self._annotations is annotations:
            return
        if self._annotations is not None:
            self._annotations.changed.disconnect(self._on_annotations_changed)
        self._annotations = annotations
        annotations.changed.connect(self._on_annotations_changed)
        self._on_annotations_changed(0)

    def _on_annotations_changed(self, _obj_id: int = 0) -> None:
        with self.hold_sync():
            self.num_objects = len(self._annotations.objects)
            self.labels_version += 1

    def save(self, folder: str | os.PathLike) -> Path:
        """Save the committed objects (``labels.tif`` + ``objects.json``), readable by the napari plugin."""
        return self.annotations.save(folder)

    def load(self, annotations: Annotations | str | os.PathLike) -> None:
        """Continue from saved objects: an :class:`Annotations` or a folder written by :meth:`save`."""
        if not isinstance(annotations, Annotations):
            annotations = Annotations.load(annotations)
        self._segmenter.annotations = annotations  # checks the shape; the widget follows its event

    def load_labels(self, labels) -> None:
        """Make an existing segmentation (a label image of the image's shape) the committed objects, ids
        kept, to correct them with :meth:`edit` or add to them.
        """
        self._segmenter.load_labels(np.asarray(labels))  # the widget follows the session's event
        n = len(self.annotations.objects)
        self.status = f"{n} object{'s' if n != 1 else ''} loaded: E over one (or edit(id)) corrects it"

    # -- correcting a committed object -------------------------------------------------------------
    def edit(self, obj_id: int) -> Prediction | None:
        """Correct committed object ``obj_id``: its mask becomes the current mask (and SAM's mask prompt);
        clicks and a box (canvas, :meth:`add_point`, :meth:`set_box`) correct it; :meth:`commit` puts it
        back under the same id (:meth:`undo` restores it). :meth:`clear_prompts` stops editing.
        """
        start = self._segmenter.refine_prompts(obj_id)
        self._editing = start
        self.editing = start.refines
        if self.prompt != _NO_PROMPT:
            self.prompt = _NO_PROMPT  # the new prompt answers with the object's own mask
        else:
            self._on_prompt(None)
        self.status = f"editing object {start.refines}: click to add, Shift-click to remove, Enter commits"
        return self._prediction

    def edit_at(self, row: float, col: float) -> int:
        """Edit the committed object at image pixel (row, col) (the canvas's E key); its id, 0 for none."""
        obj_id = self._segmenter.object_at(row, col)
        if obj_id == 0:
            self.status = "no object under the mouse: point at one and press E"
            return 0
        self.edit(obj_id)
        return obj_id

    def _stop_editing(self) -> None:
        self._editing = None
        self.editing = 0

    def finetune(self, *, minutes: float = 4.0, use: bool = True, out=None, name=None, **kwargs):
        """Fine-tune the session's model on the committed objects (:func:`napari_sam.finetune`), with a
        tqdm bar and ETA; returns the :class:`~napari_sam.finetune.tuned_model.FinetunedModel`.

        With ``use`` the session switches to it (embeddings kept unless the image encoder was adapted).
        ``out`` (a folder) or ``name`` (the model cache) also saves it; other keyword arguments go to
        :func:`napari_sam.finetune`.
        """
        from napari_sam.finetune.api import finetune
        from napari_sam.finetune.progress import TqdmProgress, validation_summary
        from napari_sam.finetune.tuned_model import use_in_session

        bar = None
        if self._progress:
            from tqdm.auto import tqdm

            bar = TqdmProgress(tqdm)
        self.status = "fine-tuning on the committed objects…"
        kwargs.setdefault("base", self._segmenter.model)
        model = finetune(self._segmenter, minutes=minutes, progress=bar, out=out, name=name, **kwargs)
        v = model.report["validation"]
        note = ""
        if use:
            kept = use_in_session(self._segmenter, model)
            note = "; in use, embeddings kept" if kept else "; in use, the image was embedded again"
        self.status = f"fine-tuned: {validation_summary(v)}{note}"
        return model

    # -- messages from the browser -----------------------------------------------------------------
    def set_state(self, sync_data) -> None:
        """Trait updates from the browser; a prompt is answered with an ``{"type": "answer"}`` message once
        handled, whatever the outcome (the canvas says "waiting for the kernel…" until then).
        """
        try:
            super().set_state(sync_data)
        finally:
            if "prompt" in sync_data:
                self.send({"type": "answer", "what": "prompt"})

    def _on_message(self, _widget, content: dict, _buffers) -> None:
        kind = content.get("type")
        if kind in ("commit", "undo", "add_found", "clear_found"):  # answered once handled (see set_state)
            try:
                self._on_browser_request(kind, content)
            finally:
                self.send({"type": "answer", "what": kind})
        else:
            self._on_browser_request(kind, content)

    def _on_browser_request(self, kind, content: dict) -> None:
        try:
            if kind == "tiles":
                self._send_tiles(content)
            elif kind == "hello":
                self._resend_prediction()
            elif kind == "commit":
                self.commit()
            elif kind == "undo":
                self.undo()
            elif kind == "edit":
                self.edit_at(float(content["row"]), float(content["col"]))
            elif kind == "clear":
                self.clear_prompts()
            elif kind == "add_found":
                self.add_found()
            elif kind == "clear_found":
                self.clear_found()
        except ValueError as err:  # user-facing: shown in the widget's status line
            self.error = str(err)

    def _send_tiles(self, content: dict) -> None:
        what = content.get("kind", "image")
        gen = int(content.get("gen", 0))
        # the limits the browser asks for: its contrast_limits update may reach the kernel after this
        # request (ipywidgets holds state updates back while an earlier one is pending; messages go at once)
        limits = content.get("contrast_limits", self.contrast_limits)
        labels = {"labels": self._plane_labels, "found": self._plane_found}.get(what, lambda: None)()
        keys = content.get("keys", [])
        if what == "image" and keys:  # what the canvas shows: the background embeds those tiles first
            bounds = np.array(
                [
                    tile_bounds(self._tiles.shape, int(lv), int(i), int(j), self._tiles.tile)
                    for lv, i, j in keys
                ]
            )
            self._view = (
                float(bounds[:, 0].min()),
                float(bounds[:, 2].min()),
                float(bounds[:, 1].max()),
                float(bounds[:, 3].max()),
            )
        for level, i, j in content.get("keys", [])[:_MAX_TILES_PER_REQUEST]:
            if what == "found" and labels is None:  # nothing found (on this plane): an empty tile
                tile = np.zeros((1, 1), dtype=np.int32)
            elif what in ("labels", "found"):
                tile = self._tiles.labels_tile(labels, int(level), int(i), int(j))
            else:
                tile = self._tiles.image_tile(int(level), int(i), int(j), limits)
            header, buffers = tile_message(what, int(level), int(i), int(j), tile, gen)
            self.send(header, buffers)
