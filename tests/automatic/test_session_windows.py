"""segment_everything(segmenter=seg): the annotator's embeddings are reused, not encoded again."""

import numpy as np
import pytest

from napari_sam.automatic import segment_everything
from napari_sam.io.samples import nuclei
from napari_sam.segmenter import Segmenter


@pytest.fixture
def encoder_runs(lite_medsam):
    """Images through the real image encoder, counted by a forward hook."""
    runs = []
    hook = lite_medsam.network.image_encoder.register_forward_hook(
        lambda module, args, out: runs.append(int(args[0].shape[0]))
    )
    yield runs
    hook.remove()


def test_segment_everything_reuses_the_annotators_embeddings(lite_medsam, encoder_runs):
    img = nuclei()[0][:256, :256]
    seg = Segmenter(lite_medsam)
    seg.set_image(img)  # the annotator embeds the whole image
    assert sum(encoder_runs) == 1

    # every mask kept (a box-trained model answers points poorly): the comparison below then has content
    points = {"points_per_side": 6, "crop_n_layers": 0, "pred_iou_thresh": 0.0, "stability_thresh": 0.0}
    before = sum(encoder_runs)
    labels, info = segment_everything(segmenter=seg, mode="points", params=points, return_info=True)
    assert sum(encoder_runs) == before and info["encoded_windows"] == 0  # the whole image: not again
    alone = segment_everything(img, model=lite_medsam, mode="points", params=points)
    assert sum(encoder_runs) == before + 1  # on its own it has to encode it
    assert labels.max() > 0 and np.array_equal(labels, alone)

    before = sum(encoder_runs)
    boxes, info = segment_everything(img, segmenter=seg, mode="boxes", return_info=True)
    first = sum(encoder_runs) - before
    assert first == info["encoded_windows"] > 0
    again = segment_everything(segmenter=seg, mode="boxes")
    assert sum(encoder_runs) == before + first  # its windows stayed in the session
    assert np.array_equal(boxes, again) and boxes.max() > 5
    # the windows it encoded serve the annotator's prompts too
    assert len(seg.embeddings) >= first + 1


def test_session_arguments_are_checked(lite_medsam):
    seg = Segmenter(lite_medsam)
    with pytest.raises(ValueError, match="set_image"):
        segment_everything(segmenter=seg)
    seg.set_image(np.random.default_rng(0).random((64, 80)).astype(np.float32))
    with pytest.raises(ValueError, match="not the segmenter's"):
        segment_everything(np.zeros((10, 10)), segmenter=seg)
    with pytest.raises(ValueError, match="embeddings= or segmenter="):
        segment_everything(segmenter=seg, embeddings=seg.embeddings)
    with pytest.raises(ValueError, match="give an image"):
        segment_everything()
