"""Which image encoder a model runs: whether embeddings computed by one model are valid for another.

A napari-sam fine-tune that trained the decoder only runs its base's image encoder, so the base's
embeddings (in memory or in a zarr cache) stay valid for it; one with encoder adapters does not.
"""

from __future__ import annotations

from napari_sam.finetune import artifact
from napari_sam.models.loading import SamModel


def finetune_report(model: SamModel) -> dict | None:
    """The fine-tune report of ``model``: a :class:`FinetunedModel`'s own, or the sidecar next to the
    checkpoint it was loaded from; None for a model that is not a napari-sam fine-tune.
    """
    report = getattr(model, "report", None)
    if report:
        return report
    if model.checkpoint is None:
        return None
    return artifact.read_sidecar(model.checkpoint)


def what_changed(model: SamModel) -> str | None:
    """What a fine-tune changed, for a status line: ``"decoder fine-tuned"`` or ``"image encoder and
    decoder fine-tuned"``; None for a model that is not a napari-sam fine-tune.
    """
    report = finetune_report(model)
    if report is None:
        return None
    return "image encoder and decoder fine-tuned" if report.get("encoder_changed") else "decoder fine-tuned"


def encoder_identity(model: SamModel) -> str | None:
    """The sha256 of the checkpoint whose image encoder ``model`` runs: its own, or, for a fine-tune that
    left the encoder as it was (decoder only), its base's (followed through fine-tunes of fine-tunes).
    """
    report = finetune_report(model)
    if report is None or report.get("encoder_changed", True):
        return model.checkpoint_sha256
    base = report.get("base", {})
    return base.get("encoder_sha256") or base.get("sha256")


def keeps_embeddings(current: SamModel, new: SamModel) -> bool:
    """Whether image embeddings computed by ``current`` are valid for ``new``: same architecture and
    preprocessing, same image encoder weights (see :func:`encoder_identity`), same precision and device.
    """
    encoder = encoder_identity(current)
    return (
        encoder is not None
        and encoder == encoder_identity(new)
        and current.spec == new.spec
        and current.precision == new.precision
        and str(current.device) == str(new.device)
    )
