"""The annotator's embeddings: the image and cache chosen, the model loaded and the shown plane embedded
in a worker, the prompt layers added, a large image's tiles embedded in the background (those in view
first), and a stack's planes embedded where the user stops scrolling.

:class:`AnnotatorEmbedding` is one part of :class:`~napari_sam._napari._annotator.AnnotatorWidget`
(which inherits these methods); it works on the widget's controls (``image_combo``, ``model_combo``,
``device_combo``, ``cache_edit``, ``compute_btn``, ``cancel_btn``, ``background``, ``propagate_btn``,
``like``), its state (``session``, ``image_layer``, the four prompt layers, ``_models``,
``_encode_relay``, ``_encode_worker``, ``_session_key``, ``_disconnect``) and its slots.
"""

from __future__ import annotations

import time

from qtpy.QtWidgets import QFileDialog

from napari_sam._napari._annotator_layers import (
    PreviewPainter,
    install_negative_click,
    make_prompt_layers,
    missing_layer_steps,
)
from napari_sam._napari._background import view_box
from napari_sam._napari._layers import check_image_layer, current_plane, same_layer
from napari_sam._napari._session import AnnotatorSession
from napari_sam._napari._workers import make_progress_relay, one_per_turn, report_error, start_worker


class AnnotatorEmbedding:
    """Compute, resume and cancel the embeddings of the annotator's image (a mixin of the widget)."""

    def selected_image(self):
        return self.image_combo.layer()

    def cache_path(self, layer_name: str, model_name: str):
        """Where the embeddings of ``layer_name`` with ``model_name`` are kept:
        ``<folder>/<layer>-<model>.zarr`` in the chosen cache folder, or None (a temporary store) when none
        is chosen.
        """
        from pathlib import Path

        folder = self.cache_edit.text().strip()
        if not folder:
            return None
        safe = "".join(
            ch if ch.isalnum() or ch in "-_." else "_" for ch in f"{layer_name}-{Path(model_name).stem}"
        )
        return Path(folder).expanduser() / f"{safe}.zarr"

    def _choose_cache_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for napari-sam embedding caches")
        if folder:
            self.cache_edit.setText(folder)

    def _current_plane(self) -> tuple[int, ...]:
        return current_plane(self.image_layer, self.session.info, self.viewer.dims.point)

    def compute_embeddings(self) -> None:
        """Load the model (once) and embed the shown plane of the chosen image, in a worker."""
        try:
            layer = self.selected_image()
            info = check_image_layer(layer)
        except ValueError as err:
            report_error("cannot segment this layer", err, self.set_status)
            return
        model_name, device = self.model_combo.currentText().strip(), self.device_combo.currentText()
        plane = current_plane(layer, info, self.viewer.dims.point)
        on_same_layer = self.session is not None and same_layer(self.image_layer, layer)
        kept = self.session.annotations if on_same_layer else None
        same = on_same_layer and self._session_key == (model_name, device)
        if same and self.session.is_tiled:  # a large image: resume its background embedding
            self._start_background(plane)
            return
        self._session_key = (model_name, device)
        data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
        models = self._models
        cache = self.cache_path(layer.name, model_name)

        def job(progress, should_stop):
            import pandas  # noqa: F401  (the Points layer's features need it: imported here, not on the main thread)

            key = (model_name, device)
            if key not in models:
                from napari_sam.models.loading import load_model

                models[key] = load_model(model_name, device=device)
            session = AnnotatorSession(models[key], info, data, annotations=kept, cache=cache)
            session.encode_plane(plane, progress, should_stop)
            return session, layer, plane

        self._start_encode(job, f"Computing embeddings with {model_name}", plane)

    def use_model(self, model, name: str) -> str:
        """Answer prompts with ``model`` (a loaded model; ``name`` its checkpoint path, shown in the model
        box) from now on, keeping the committed objects. The image's embeddings are kept when ``model``
        runs the same image encoder (a decoder-only fine-tune of the session's model); otherwise they are
        computed again with it, in a worker. Returns the status line saying which.
        """
        from napari_sam.finetune.identity import what_changed

        if self._encode_worker is not None or self._propagate_relay is not None or self.previews.pending:
            raise ValueError("the annotator is busy (embedding, propagating or committing): try again after")
        device = self.device_combo.currentText()
        self._models[(name, device)] = model
        self.model_combo.setCurrentText(name)
        label = name.replace("\\", "/").rsplit("/", 1)[-1]
        changed = what_changed(model)
        label += f" ({changed})" if changed else ""
        if self.session is not None and self.session.use_model(model):
            self._session_key = (name, device)
            text = f"Using {label}: embeddings kept, committed objects kept."
            self.set_status(text)
            self.request_preview()  # the prompts shown, answered by the new decoder
            return text
        if self.session is None:
            text = f"Using {label}: choose an image and compute its embeddings."
            self.set_status(text)
            return text
        self.compute_embeddings()  # a new session on the same layer keeps the committed objects
        text = f"Using {label}: the image encoder changed, so the embeddings are computed again."
        self.set_status(text)
        return text

    def _start_encode(self, job, desc: str, plane) -> None:
        if self._encode_relay is not None:
            self._encode_relay.cancel()  # a newer request supersedes it
        self.set_status(desc + " …")
        self.compute_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        started = time.perf_counter()
        callback, relay = make_progress_relay("napari-sam: " + desc.lower())
        self._encode_relay, self._encode_plane = relay, plane

        def done(result):
            if self._encode_relay is not relay:
                return
            session, layer, plane = result
            view = view_box(self.viewer, layer) if session.is_tiled else None  # where the user looks
            if view is not None:  # read while napari adds the prompt layers, so
                # that the first click on a region not embedded yet need not wait for it
                seg, centre = session.segmenter, ((view[0] + view[2]) / 2, (view[1] + view[3]) / 2)
                start_worker(
                    seg.typical_extent, seg.plane_index(tuple(plane)), centre, what="reading the image"
                )
            steps = []
            if session is not self.session:
                steps = missing_layer_steps(self.viewer, layer, session.info, session.labels_view)
            # the prompt layers one per event-loop turn (the viewer repaints between them), then install
            one_per_turn(steps, lambda: self._install(*result, seconds=time.perf_counter() - started))

        def finished():
            relay.close()
            if self._encode_relay is relay:
                self._encode_relay = self._encode_worker = None
                self.compute_btn.setEnabled(True)
                self.cancel_btn.setEnabled(False)

        self._encode_worker = start_worker(
            job,
            callback,
            lambda: relay.cancelled,
            what="computing embeddings",
            on_return=done,
            on_finish=finished,
            status=self.set_status,
        )

    def cancel(self) -> None:
        """Stop the running embedding or propagation job at its next step (finished tiles are kept)."""
        for relay in (self._encode_relay, self._propagate_relay):
            if relay is not None:
                relay.cancel()
        self.background.stop()

    def _install(self, session: AnnotatorSession, layer, plane, seconds: float) -> None:
        if session is not self.session:
            self.background.stop()  # the old session's tiles
            for disconnect in self._disconnect:
                disconnect()
            self._disconnect = []
            self.session, self.image_layer = session, layer
            self.points_layer, self.shapes_layer, self.preview_layer, self.objects_layer = make_prompt_layers(
                self.viewer, layer, session.info, session.labels_view
            )
            self._painter = PreviewPainter(self.preview_layer, session.info)
            install_negative_click(self.points_layer, lambda: self.negative_mode)
            for lay in (self.points_layer, self.shapes_layer):
                lay.events.data.connect(self._on_prompts_changed)
                self._disconnect.append(lambda lay=lay: lay.events.data.disconnect(self._on_prompts_changed))
            events = session.segmenter.events
            for signal, slot in (
                (events.committed, self._on_objects_changed),
                (events.undone, self._on_objects_changed),
                (events.annotations_replaced, self._on_annotations_replaced),
            ):
                signal.connect(slot)
                self._disconnect.append(lambda signal=signal, slot=slot: signal.disconnect(slot))
            self.viewer.layers.selection.active = self.points_layer
            self.points_layer.mode = "add"
            self.propagate_btn.setEnabled(bool(session.info.lead_shape))
            self.like.set_stack(bool(session.info.lead_shape))
        where = f" (plane {plane})" if plane else ""
        cached = {
            "complete": f"; read from {session.cache}",
            "resumed": f"; cache {session.cache} resumed",
            "new": f"; kept in {session.cache}",
            "rebuilt": f"; stale cache {session.cache} rebuilt",
        }
        note = cached.get(session.cache_status, "")
        self.set_status(
            f"Embeddings ready{where} in {seconds:.1f} s ({session.model.device}, "
            f"{session.model.runs_as}){note}. Click on an object or draw a box."
        )
        if session.is_tiled:
            self.set_status(
                f"Ready in {seconds:.1f} s ({session.model.device}, {session.model.runs_as}){note}: click "
                "on an object or draw a box. The tiles are embedded in the background, those in view "
                "first; a prompt elsewhere embeds its own window first."
            )
            self._start_background(plane)
        self.embeddings_ready.emit(plane)
        self.request_preview()

    def _start_background(self, plane) -> None:
        """Embed the rest of a large image's plane in the background, the tiles in view first."""
        session, layer = self.session, self.image_layer
        self.background.embed(
            session.segmenter,
            session.segmenter.plane_index(tuple(plane)),
            lambda: view_box(self.viewer, layer),
        )

    def _on_plane_changed(self, *_) -> None:
        if self.session is None or not self.session.info.lead_shape:
            return
        if self._painter is not None:
            self._painter.clear()
        self.prediction = None
        if self.refine.editing is not None:  # a correction belongs to its plane
            k_id = self.refine.editing.refines
            self.refine.stop()
            self.set_status(f"Stopped editing object {k_id}: the plane changed (it is unchanged).")
        self._plane_timer.start()

    def _on_plane_settled(self) -> None:
        if self.session is None or self.image_layer not in self.viewer.layers:
            return
        plane = self._current_plane()
        if self.session.is_ready(plane):
            if self.session.is_tiled:
                self._start_background(plane)
            self.request_preview()
        elif self._encode_plane != plane or self._encode_worker is None:
            session, layer = self.session, self.image_layer

            def job(progress, should_stop):
                session.encode_plane(plane, progress, should_stop)
                return session, layer, plane

            self._start_encode(job, f"Computing embeddings of plane {plane}", plane)
