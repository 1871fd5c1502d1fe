"""The notebook widget's objects found for review: segment everything and "like the committed ones"
(:class:`FoundObjects`, a part of :class:`~sam_widgets.widget.SamWidget`).

The objects found are outlined in the canvas next to the committed ones until the user keeps them
(:meth:`FoundObjects.add_found`, "Keep found") or drops them (:meth:`FoundObjects.clear_found`, "Drop
found"). Long jobs run in the kernel with the canvas's progress line and a tqdm bar.
"""

from __future__ import annotations

import time

import numpy as np

from napari_sam.automatic.like_committed import new_objects
from napari_sam.automatic.summary import describe_reading, why_empty
from napari_sam.progress import ProgressClock
from sam_widgets._progress import progress_bar


class FoundObjects:
    """Segment everything / find like the committed ones, and the review of what was found.

    A mixin of :class:`~sam_widgets.widget.SamWidget`: it uses the widget's session (``_segmenter``),
    its traits (``num_found``, ``found_version``, ``status``, ``error``, ``busy``, ``kernel_progress``)
    and its background embedding.
    """

    _found: np.ndarray | None = None

    @property
    def found(self) -> np.ndarray | None:
        """The objects found by :meth:`segment_everything` or :meth:`find_like_committed` and not yet
        added (:meth:`add_found`) or dropped (:meth:`clear_found`): int32 labels of the session's shape,
        (H, W), or (P, H, W) for a stack (0 on the planes not searched); None when there are none.
        """
        return self._found

    def segment_everything(
        self,
        *,
        polarity: str = "auto",
        min_area: int | None = None,
        max_area: int | None = None,
        pred_iou_thresh: float | None = None,
        stability_thresh: float | None = None,
        examples=None,
        planes: str | None = None,
        add: bool = False,
        **more_params,
    ) -> np.ndarray:
        """Segment every object of the plane in view (box proposals answered by the session's model,
        reusing its embeddings: :func:`napari_sam.automatic.segment_everything`), or of every plane of a
        stack, and show them in the canvas for review (outlined), next to the committed objects.

        Parameters
        ----------
        polarity
            ``"auto"``, ``"bright"`` or ``"dark"``: how objects look against their surroundings.
        min_area, max_area
            Object size range in pixels (None: from the image's typical object, or from ``examples``).
        pred_iou_thresh, stability_thresh
            Drop masks whose predicted IoU or stability is below these (None: the core's default, 0.7;
            box proposals take a lower predicted-IoU bar where the image's typical objects score low).
        examples
            An (H, W) label image of objects to find more of ("like these": their size range and
            polarity set the proposals); they are not part of the result. For the committed objects use
            :meth:`find_like_committed`.
        planes
            None: the plane in view. ``"all"`` (a stack): every plane, each object's planes linked under
            one id (:func:`napari_sam.automatic.segment_stack`; one polarity, size and zoom for all).
        add
            Add the objects found at once as committed objects (:meth:`add_found`) instead of waiting for
            review.
        **more_params
            Other :class:`~napari_sam.automatic.box_mode.BoxModeParams` settings (``diameter``,
            ``flatten``, ``denoise``, ``max_overlap``, …).

        Returns
        -------
        numpy.ndarray
            (H, W) int32 labels of the objects found ((P, H, W) with ``planes="all"``), 1..N, without the
            committed objects (a found object
            mostly over a committed one is dropped, the rest never overlaps them). Also in :attr:`found`
            until :meth:`add_found` or :meth:`clear_found`. Settings that make no sense raise the core's
            ``ValueError`` (shown in the status line too).
        """
        from napari_sam.automatic import segment_everything

        given = {
            "polarity": polarity,
            "min_area": min_area,
            "max_area": max_area,
            "pred_iou_thresh": pred_iou_thresh,
            "stability_thresh": stability_thresh,
        }
        params = {k: v for k, v in given.items() if v is not None} | more_params
        seg = self._segmenter
        plane = seg.plane
        if planes is not None:
            return self._segment_every_plane(planes, params, examples, add)

        def run(progress):
            labels, info = segment_everything(
                segmenter=seg,
                plane=plane,
                mode="boxes",
                params=params,
                examples=examples,
                progress=progress,
                return_info=True,
            )
            if examples is not None:  # the examples come back under their own labels: not found
                labels = np.where(np.asarray(examples) > 0, 0, labels)
            return new_objects(labels, self._plane_labels()), [info]

        found, infos = self._run_job("segmenting everything", run)
        self._show_found(self._full_found({plane: found}), infos, add)
        return found

    def find_like_committed(self, planes=None, add: bool = False, **params) -> np.ndarray:
        """Find the objects like the committed ones on the rest of the plane in view (or other planes of
        a stack) and show them in the canvas for review (outlined); the committed objects are kept and
        never found again (:func:`napari_sam.automatic.segment_like_committed`).

        Parameters
        ----------
        planes
            None: the plane in view; a plane index; a list of indices; or ``"all"`` (stacks).
        add
            Add them at once as committed objects (:meth:`add_found`) instead of waiting for review.
        **params
            :class:`~napari_sam.automatic.box_mode.BoxModeParams` settings (``polarity``, ``min_area``,
            ``max_area``, ``pred_iou_thresh``, ``stability_thresh``, …); those not given are learnt from
            the committed objects (size range, polarity) or the core's defaults.

        Returns
        -------
        numpy.ndarray
            int32 labels of the new objects only, (H, W) for one plane, (len(planes), H, W) for a list
            or ``"all"`` (an object on neighbouring planes keeps one id). Also in :attr:`found` until
            :meth:`add_found` or :meth:`clear_found`. No committed object, or settings that make no
            sense: the core's ``ValueError`` (shown in the status line too).
        """
        from napari_sam.automatic import segment_like_committed

        seg = self._segmenter

        def run(progress):
            found, info = segment_like_committed(
                seg, planes=planes, params=params or None, progress=progress, return_info=True
            )
            return found, info["planes"]

        found, infos = self._run_job("finding objects like the committed ones", run)
        per_plane = found[None] if found.ndim == 2 else found
        self._show_found(self._full_found(dict(zip((i["plane"] for i in infos), per_plane))), infos, add)
        return found

    def _segment_every_plane(self, planes, params: dict, examples, add: bool) -> np.ndarray:
        """:meth:`segment_everything` with ``planes="all"``: 3D labels of the session's stack."""
        from napari_sam.automatic import segment_stack
        from napari_sam.automatic.like_committed import new_objects

        seg = self._segmenter
        try:
            if planes != "all":
                raise ValueError(
                    f"planes must be None (the plane in view) or 'all' (every plane); got {planes!r}"
                )
            if seg.source is None or not seg.source.is_stack:
                raise ValueError("planes='all' needs a stack (P, H, W); this image has one plane")
            if examples is not None:
                raise ValueError(
                    "examples guide one plane: leave planes=None, or use find_like_committed(planes='all')"
                )
        except ValueError as err:
            self.error = str(err)
            raise
        data, arguments = seg.source.arguments()

        def run(progress):
            infos: list[dict] = []
            labels = segment_stack(
                data,
                **arguments,
                model=seg.model,
                mode="boxes",
                params=params or None,
                progress=progress,
                infos=infos,
            )
            return new_objects(labels, seg.labels), infos

        found, infos = self._run_job("segmenting every plane", run, unit="planes")
        self._show_found(found, infos, add)
        return found

    def add_found(self, ids=None) -> list[int]:
        """Add the objects found (:attr:`found`), or only those of ``ids``, as committed objects (each
        one undo step; pixels already committed stay with their object); returns their new ids.
        """
        if self._found is None:
            raise ValueError(
                "no objects found to add: run segment_everything() or find_like_committed() first"
            )
        found = self._found
        if ids is not None:
            keep = np.asarray(ids, dtype=np.int64).ravel()
            found = np.where(np.isin(found, keep), found, 0).astype(np.int32)
        new = self._segmenter.commit_labels(found)
        self.clear_found()
        n = len(new)
        self.error = ""
        self.status = (
            f"added {n} object{'s' if n != 1 else ''} (ids {new[0]}–{new[-1]}): Ctrl+Z / w.undo() removes "
            "them one at a time"
            if n
            else "no object added: every one found is already covered by committed objects"
        )
        return new

    def clear_found(self) -> None:
        """Drop the objects found (the committed objects stay as they are)."""
        if self._found is None:
            return
        self._found = None
        with self.hold_sync():
            self.num_found = 0
            self.found_version += 1
        self.status = "found objects dropped"

    def _full_found(self, planes: dict) -> np.ndarray:
        """Labels of the session's shape from ``{plane: (H, W) labels}`` (ids kept, one object across
        planes keeps its id).
        """
        full = np.zeros(np.shape(self._segmenter.labels), dtype=np.int32)
        for z, labels in planes.items():
            if full.ndim == 3:
                full[int(z)] = labels
            else:
                full[...] = labels
        return full

    def _show_found(self, full: np.ndarray, infos: list[dict], add: bool) -> None:
        count = len(np.unique(full)) - 1 if full.any() else 0
        self._found = full if count else None
        with self.hold_sync():
            self.num_found = count
            self.found_version += 1
        self.error = ""
        if not count:
            self.status = f"no objects found: {why_empty(infos)}"
        elif add:
            self.add_found()
        else:
            reading = describe_reading(infos)
            self.status = (
                f"{count} object{'s' if count != 1 else ''} found (outlined)"
                + (f", read as {reading}" if reading else "")
                + ": Keep found (or the widget's .add_found()) keeps them, Drop found (.clear_found()) "
                "drops them"
            )

    def _run_job(self, what: str, run, unit: str = "windows"):
        """``run(progress)`` in the kernel with the canvas's progress line ("finding … 40 % · 2/5
        windows · about 3 s left") and a tqdm bar; a ``ValueError`` goes to the status line and on to the
        caller. A large image's background embedding pauses meanwhile.
        """
        seg = self._segmenter
        resume = self._background.running
        self._background.stop()
        clock = ProgressClock(unit)
        self._job = what
        self.busy, self.error, self.status = True, "", f"{what}…"
        self.kernel_progress = f"{what} …"
        try:
            with progress_bar(what, enabled=self._progress) as bar:

                def progress(done: int, total: int) -> None:
                    bar(done, total)
                    now = time.monotonic()
                    if now - self._progress_sent >= 0.1 or done >= total:
                        self._progress_sent = now
                        self.kernel_progress = f"{what} {clock.text(done, total)}"

                return run(progress)
        except ValueError as err:
            self.error = str(err)
            raise
        finally:
            self._job = None
            self.kernel_progress = ""
            self.busy = False
            if resume and seg.is_tiled:
                self.resume_embedding()
