"""A mask over two touching objects, or one object cut in two? The seam between the parts decides."""

import numpy as np
from scipy import ndimage as ndi
from skimage.draw import disk, ellipse

from napari_sam.automatic.clusters import mask_roles, scale_preference, seam_valley
from napari_sam.automatic.filters import Candidates


def _cands(masks):
    n = len(masks)
    return Candidates(
        masks, np.zeros((n, 2), np.int64), np.ones(n, np.float32), np.ones(n, np.float32), np.arange(n)
    )


def _halves(whole: np.ndarray, col: int) -> tuple[np.ndarray, np.ndarray]:
    left, right = whole.copy(), whole.copy()
    left[:, col:] = False
    right[:, :col] = False
    return left, right


def test_two_touching_nuclei_with_a_darker_seam_are_a_cluster():
    image = np.full((40, 60), 10.0)
    a = np.zeros(image.shape, bool)
    b = np.zeros(image.shape, bool)
    a[disk((20, 20), 10, shape=image.shape)] = True
    b[disk((20, 39), 10, shape=image.shape)] = True
    image[a | b] = 100.0
    image[:, 28:31] = np.where((a | b)[:, 28:31], 60.0, 10.0)  # the dimmer line where they touch
    whole = a | b
    left, right = _halves(whole, 30)
    c = _cands([left, right, whole])
    assert seam_valley(c, 2, 0, 1, image, 10.0) > 0.2
    fragments, clusters, wholes = mask_roles(c, smooth=image, background=10.0)
    assert clusters.tolist() == [False, False, True] and not fragments.any() and not wholes.any()


def test_one_nucleus_cut_in_two_stays_whole_and_its_halves_rank_below_it():
    rng = np.random.default_rng(0)
    image = np.full((40, 60), 10.0) + rng.normal(0, 2, (40, 60))
    whole = np.zeros(image.shape, bool)
    whole[ellipse(20, 30, 10, 20, shape=image.shape)] = True
    image[whole] += 90.0
    left, right = _halves(whole, 30)
    c = _cands([left, right, whole])
    assert abs(seam_valley(c, 2, 0, 1, image, 10.0)) < 0.04
    fragments, clusters, wholes = mask_roles(c, smooth=image, background=10.0)
    assert clusters.tolist() == [False, False, False]
    assert fragments.tolist() == [True, True, False]
    assert wholes.tolist() == [False, False, True]
    # without the image, or larger than a whole may be, it is a cluster as before
    assert mask_roles(c).clusters.tolist() == [False, False, True]
    big = mask_roles(c, smooth=image, background=10.0, max_whole_area=whole.sum() - 1)
    assert big.clusters.tolist() == [False, False, True]


def _scene():
    """A large disk (radius 22) and two small ones (radius 7): one touching pair and one 6 px apart."""
    shape = (80, 160)
    image = np.full(shape, 10.0)
    masks = {}
    for name, (r, c, radius) in {
        "large": (40, 40, 22),
        "a": (40, 90, 7),
        "b": (40, 103, 7),  # touches a: no seam
        "c": (40, 125, 7),
        "d": (40, 145, 7),  # 6 px of background from c
    }.items():
        m = np.zeros(shape, bool)
        m[disk((r, c), radius, shape=shape)] = True
        masks[name] = m
        image[m] = 100.0
    return ndi.gaussian_filter(image, 1.0), masks


def test_parts_apart_inside_a_whole_are_judged_by_what_lies_between_them():
    image, m = _scene()
    left, right = m["large"].copy(), m["large"].copy()
    left[:, 30:] = False
    right[:, :50] = False  # 20 bright pixels of the object between the two pieces
    c = _cands([left, right, m["large"]])
    assert abs(seam_valley(c, 2, 0, 1, image, 10.0)) < 0.04
    roles = mask_roles(c, smooth=image, background=10.0)
    assert roles.clusters.tolist() == [False, False, False] and roles.wholes.tolist() == [False, False, True]
    # two objects with background between them, under one mask
    span = m["c"] | m["d"]
    span[33:48, 125:146] = True
    c = _cands([m["c"], m["d"], span])
    assert seam_valley(c, 2, 0, 1, image, 10.0) > 0.5
    assert mask_roles(c, smooth=image, background=10.0).clusters.tolist() == [False, False, True]


def test_a_large_object_among_small_ones_is_one_blob_at_its_own_scale():
    image, m = _scene()
    left, right = m["large"].copy(), m["large"].copy()
    left[:, 30:] = False
    right[:, :50] = False
    large = _cands([left, right, m["large"]])
    pair = _cands([m["a"], m["b"], m["a"] | m["b"]])  # two touching small objects, one mask
    assert scale_preference(large, 2, image, 7.0) > 1.25
    assert scale_preference(pair, 2, image, 7.0) < 1.0
    typical = float(m["a"].sum())
    # larger than 1.4 typical objects: a cluster whatever its seam, unless it is one blob of its size
    assert mask_roles(large, smooth=image, background=10.0, max_whole_area=1.4 * typical).clusters[2]
    roles = mask_roles(large, smooth=image, background=10.0, max_whole_area=1.4 * typical, typical_radius=7.0)
    assert roles.wholes.tolist() == [False, False, True] and not roles.clusters.any()
    roles = mask_roles(pair, smooth=image, background=10.0, max_whole_area=1.4 * typical, typical_radius=7.0)
    assert roles.clusters.tolist() == [False, False, True]
