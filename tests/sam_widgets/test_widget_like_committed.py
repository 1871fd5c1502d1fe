"""SamWidget.find_like_committed / segment_everything in the kernel, with the real LiteMedSAM on a 160×160
crop of the stardist nuclei: three committed nuclei find the others, none over a committed one, shown
for review (the "found" label tiles the canvas outlines) until add_found commits them (each one undo
step); absurd settings are the core's ValueError, in the status line too; a blank plane says why
nothing was found. The canvas itself: test_browser_like_committed.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from sam_widgets import SamWidget

COMMITTED = 3


@pytest.fixture(scope="module")
def crop(nuclei_data):
    image, truth = nuclei_data
    return image[:160, :160], truth[:160, :160]


def _best_iou(mask: np.ndarray, truth: np.ndarray) -> float:
    ids, counts = np.unique(truth[mask], return_counts=True)
    counts, ids = counts[ids > 0], ids[ids > 0]
    if not ids.size:
        return 0.0
    t = truth == ids[np.argmax(counts)]
    return float((mask & t).sum() / (mask | t).sum())


def test_find_like_committed_review_then_add(crop, lite_medsam):
    image, truth = crop
    w = SamWidget(image, model=lite_medsam, progress=False)
    border = set(np.unique(truth[[0, -1]])) | set(np.unique(truth[:, [0, -1]]))
    ids = [v for v in np.unique(truth) if v and v not in border][:COMMITTED]  # whole nuclei
    for v in ids:
        w.segmenter.commit(truth == v)
    committed = w.labels.copy()
    lines = []
    w.observe(lambda change: lines.append(change["new"]), names="kernel_progress")

    found = w.find_like_committed()

    n = int(found.max())
    others = len(np.unique(truth)) - 1 - COMMITTED
    assert found.shape == image.shape and found.dtype == np.int32
    assert n >= others // 2, f"found {n} of the {others} other nuclei"
    assert set(np.unique(found)) == set(range(n + 1))  # ids 1..N
    assert not ((found > 0) & (committed > 0)).any()  # never over a committed object
    good = sum(_best_iou(found == k, truth) >= 0.5 for k in range(1, n + 1))
    assert good >= 0.7 * n, f"only {good} of {n} found objects match a nucleus"
    # shown for review, not committed yet; the canvas showed the job's percentage, then nothing
    assert np.array_equal(w.found, found) and np.array_equal(w.labels, committed)
    assert w.num_found == n and w.num_objects == COMMITTED
    assert w.status.startswith(f"{n} objects found (outlined), read as ") and ".add_found()" in w.status
    assert any(line.startswith("finding objects like the committed ones") and "%" in line for line in lines)
    assert lines[-1] == "" and w.kernel_progress == "" and not w.busy

    # the canvas asks for the "found" tiles: the found objects' ids, as label tiles
    sent = []
    send = w.send
    w.send = lambda content, buffers=None: (sent.append((content, buffers)), send(content, buffers))
    w._on_message(w, {"type": "tiles", "kind": "found", "gen": w.found_version, "keys": [[0, 0, 0]]}, [])
    header, buffers = sent[-1]
    assert header["kind"] == "found" and not header["empty"]
    assert np.array_equal(np.frombuffer(buffers[0], "<i4").reshape(160, 160), found)

    # the canvas's "Keep found" button: every found object becomes a committed one, one undo step each
    w._on_message(w, {"type": "add_found"}, [])
    assert sent[-1][0] == {"type": "answer", "what": "add_found"}
    assert w.num_objects == COMMITTED + n and w.found is None and w.num_found == 0
    assert np.array_equal(w.labels > 0, (committed > 0) | (found > 0))
    assert np.array_equal(w.labels[committed > 0], committed[committed > 0])  # committed ones kept
    assert w.status.startswith(f"added {n} objects") and "Ctrl+Z" in w.status
    assert w.undo() == COMMITTED + n and w.num_objects == COMMITTED + n - 1
    with pytest.raises(ValueError, match="no objects found to add"):
        w.add_found()


def test_settings_errors_and_nothing_to_learn_from(crop, lite_medsam):
    image, _ = crop
    w = SamWidget(image, model=lite_medsam, progress=False, encode=False)
    with pytest.raises(ValueError, match="no committed objects to learn from"):
        w.find_like_committed()
    assert "no committed objects" in w.error and not w.busy and w.kernel_progress == ""
    with pytest.raises(ValueError, match=r"min_area \(500\) is larger than max_area \(10\)"):
        w.segment_everything(min_area=500, max_area=10)
    assert w.error.startswith("min_area (500) is larger than max_area (10)")
    with pytest.raises(ValueError, match="pred_iou_thresh must lie in"):
        w.segment_everything(pred_iou_thresh=2.0)
    with pytest.raises(ValueError, match="polarity"):
        w.segment_everything(polarity="sideways")
    with pytest.raises(ValueError, match="unknown parameter"):
        w.segment_everything(colour="red")
    assert w.found is None and w.num_objects == 0


def test_a_stack_blank_plane_then_all_planes_added_at_once(crop, lite_medsam):
    image, truth = crop
    stack = np.stack([image, np.full_like(image, 7)])
    w = SamWidget(stack, model=lite_medsam, stack_axis=0, progress=False, encode=False)
    w.plane = 1
    labels = w.segment_everything()  # a blank plane: nothing, and the status says why
    assert labels.shape == image.shape and not labels.any()
    assert w.found is None and w.num_found == 0 and w.error == ""
    assert w.status == "no objects found: no blob stands out of the noise"

    # objects committed on plane 0; planes="all" with add=True: found and committed at once
    border = set(np.unique(truth[[0, -1]])) | set(np.unique(truth[:, [0, -1]]))
    for v in [v for v in np.unique(truth) if v and v not in border][:COMMITTED]:
        w.segmenter.commit(truth == v, plane=0)
    committed = w.labels.copy()
    found = w.find_like_committed(planes="all", add=True)
    n = int(found.max())
    assert found.shape == stack.shape and n >= 3 and not found[1].any()
    assert w.num_objects == COMMITTED + n and w.found is None and w.num_found == 0
    assert np.array_equal(w.labels > 0, (committed > 0) | (found > 0))
    assert w.status.startswith(f"added {n} objects")


def test_segment_everything_on_every_plane_of_a_stack(lite_medsam):
    """planes="all": 3D labels of the whole stack, one id per object through z, found for review and
    then added; a 2D image or examples with it get one clear message."""
    from napari_sam.automatic import match_scores
    from napari_sam.io.sample_variants import anisotropic_stack

    stack, truth = anisotropic_stack((10, 96, 96), count=10, seed=1)
    w = SamWidget(stack, model=lite_medsam, stack_axis=0, progress=False, encode=False)
    found = w.segment_everything(planes="all")
    assert found.shape == stack.shape and w.found is found
    assert match_scores(found, truth)["f1"] >= 0.7
    assert "found (outlined), read as bright objects" in w.status
    new = w.add_found()
    assert len(new) == len(np.unique(found)) - 1 and w.found is None
    with pytest.raises(ValueError, match="examples guide one plane"):
        w.segment_everything(planes="all", examples=np.zeros(stack.shape[1:], np.int32))
    with pytest.raises(ValueError, match="planes must be None"):
        w.segment_everything(planes="some")
    flat = SamWidget(stack[3], model=lite_medsam, progress=False, encode=False)
    with pytest.raises(ValueError, match="needs a stack"):
        flat.segment_everything(planes="all")
    assert "needs a stack" in flat.error
