"""A :class:`~napari_sam.finetune.train.TrainingProgress` callback drawing tqdm bars with ETA: one for the
windows being embedded, one for the training steps (the validation mIoU so far in its postfix).
"""

from __future__ import annotations


def validation_summary(validation: dict) -> str:
    """The held-out scores of a fine-tune report's ``"validation"`` entry, before → after, as the front
    ends show them: box mIoU, and the click IoU where the report has it.
    """
    text = f"held-out box mIoU {validation['before']:.3f} → {validation['after']:.3f}"
    if "click_before" in validation:
        text += f", click IoU {validation['click_before']:.3f} → {validation['click_after']:.3f}"
    return text


class TqdmProgress:
    """Pass as ``progress=`` to :func:`~napari_sam.finetune.api.finetune`; ``tqdm_class`` is ``tqdm.tqdm``
    (terminal, standard error) or ``tqdm.auto.tqdm`` (a widget in notebooks).
    """

    def __init__(self, tqdm_class=None) -> None:
        if tqdm_class is None:
            from tqdm import tqdm as tqdm_class
        self.tqdm_class = tqdm_class
        self.bar = None
        self.stage = None

    def __call__(self, p) -> None:
        if p.stage == "done":
            self.close()
            return
        if p.stage != self.stage:
            self.close()
            self.stage = p.stage
            embedding = p.stage == "embedding"
            self.bar = self.tqdm_class(
                total=p.total,
                desc="embedding windows" if embedding else "training",
                unit="win" if embedding else "step",
            )
        self.bar.total = p.total
        self.bar.n = p.done
        if p.best_val_miou is not None:
            # the kept weights are chosen on boxes and clicks together: their box mIoU may go down a little
            kept = f"{p.base_val_miou:.3f}->{p.best_val_miou:.3f}"
            self.bar.set_postfix(box_mIoU_base_kept=kept, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
