"""A fine-tuned model (:class:`FinetunedModel`, what :func:`~napari_sam.finetune.api.finetune` returns) and
putting a model into a running session (:func:`use_in_session`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from napari_sam.finetune import artifact
from napari_sam.finetune.identity import keeps_embeddings
from napari_sam.models.loading import SamModel


@dataclass(repr=False)
class FinetunedModel(SamModel):
    """A :class:`~napari_sam.models.loading.SamModel` made by :func:`finetune`, ready for a
    :class:`~napari_sam.segmenter.Segmenter`.

    Attributes
    ----------
    report
        The sidecar's content: base model, data fingerprints, counts, parameters, validation before and
        after, times, versions.
    state
        The full network's weights under the base architecture's keys (what :meth:`save` writes).
    """

    report: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)

    @property
    def val_before(self) -> float:
        return self.report["validation"]["before"]

    @property
    def val_after(self) -> float:
        return self.report["validation"]["after"]

    def save(self, outdir: str | os.PathLike | None = None, *, name: str | None = None, cache=None) -> Path:
        """Write ``model.safetensors`` and ``model.json`` into ``outdir``, or into the model cache as
        ``name`` (then ``napari-sam models list`` shows it). Returns the weights path; afterwards
        :attr:`checkpoint` points to it.
        """
        if (outdir is None) == (name is None):
            raise ValueError("give either an output folder or a name to save into the model cache")
        folder = artifact.cache_folder(name, cache) if name is not None else Path(outdir)
        artifact.check_output_dir(folder)
        report = dict(self.report)
        if name is not None:
            report["name"] = name
        path = artifact.write(folder, self.state, report)
        self.report = artifact.read_sidecar(path)
        self.checkpoint = path
        self.checkpoint_sha256 = self.report["weights"]["sha256"]
        return path

    def __repr__(self) -> str:
        v = self.report.get("validation", {})
        return (
            f"FinetunedModel(base={self.spec.name!r}, device={str(self.device)!r}, "
            f"val box mIoU {v.get('before', float('nan')):.3f} -> {v.get('after', float('nan')):.3f}, "
            f"checkpoint={str(self.checkpoint)!r})"
        )


def use_in_session(segmenter, model: SamModel) -> bool:
    """Switch ``segmenter`` (a :class:`~napari_sam.segmenter.Segmenter`) to ``model``, keeping its image
    and committed objects. The embeddings are kept when the image encoder is the one that computed them
    (:func:`keeps_embeddings`: a decoder-only fine-tune of the session's model); otherwise (encoder
    adapters, another base) the image is embedded again. Returns whether the embeddings were kept.
    """
    if segmenter.source is None or keeps_embeddings(segmenter.model, model):
        kept = segmenter.source is not None
        segmenter.model = model
        if segmenter.embeddings is not None:
            segmenter.embeddings.model = model  # same encoder weights: the cached embeddings stay valid
        segmenter.last_prediction = None  # answered by the previous decoder
        return kept
    src, annotations, plane = segmenter.source, segmenter.annotations, segmenter.plane
    segmenter.model = model
    data, arguments = src.arguments()
    segmenter.set_image(data, **arguments, plane=plane)
    segmenter.annotations = annotations
    return False
