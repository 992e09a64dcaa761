"""Segmentation metrics from one contingency table equal scikit-image's, on numpy and dask."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.metrics import adapted_rand_error, variation_of_information

from napari_wbe.phantom import mini_brain
from napari_wbe.proofreading_metrics import contingency, metrics


def blobs(seed: int, n_ids: int, shape=(20, 40, 50)) -> np.ndarray:
    """Blocky random labels 0..n_ids-1 with 10% of voxels salted at random."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, n_ids, (shape[0] // 4, shape[1] // 5, shape[2] // 5))
    labels = coarse.repeat(4, 0).repeat(5, 1).repeat(5, 2)
    salt = rng.random(shape) < 0.1
    labels[salt] = rng.integers(0, n_ids, int(salt.sum()))
    return labels.astype(np.uint32)


def assert_matches_skimage(labels, truth, m):
    split, merge = variation_of_information(truth, labels, ignore_labels=(0,))
    are, sk_precision, sk_recall = adapted_rand_error(truth, labels)
    assert m["vi_split"] == pytest.approx(split, abs=1e-10)
    assert m["vi_merge"] == pytest.approx(merge, abs=1e-10)
    assert m["vi"] == pytest.approx(split + merge, abs=1e-10)
    assert m["arand"] == pytest.approx(are, abs=1e-12)
    # scikit-image 0.26 names these the other way round (its issue #6485); see the module docstring.
    assert m["precision"] == pytest.approx(sk_recall, abs=1e-12)
    assert m["recall"] == pytest.approx(sk_precision, abs=1e-12)


@pytest.fixture(scope="module")
def brain():
    return mini_brain(n_neurons=20, shape=(24, 96, 96), seed=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_labels_match_scikit_image(seed):
    truth, labels = blobs(seed, 9), blobs(seed + 10, 14)  # both with 0s: background and a test segment 0
    assert (truth == 0).any() and (labels == 0).any()
    assert_matches_skimage(labels, truth, metrics(labels, truth))


def test_large_ids_and_signed_types_match_scikit_image():
    truth, labels = blobs(3, 7).astype(np.int64), blobs(4, 9).astype(np.int64)
    big = np.where(labels > 0, labels + 3_000_000_000, 0)  # beyond the lookup-table fast path
    # (scikit-image itself would allocate an array as long as the largest id: compare on small ids)
    assert_matches_skimage(labels, truth, metrics(big, truth))


def test_phantom_fragments_only_split(brain):
    m = metrics(brain.fragments, brain.labels)
    assert_matches_skimage(brain.fragments, brain.labels, m)
    # fragments lie inside one neuron each: nothing merged, every big neuron split
    assert m["vi_merge"] == pytest.approx(0.0, abs=1e-12) and m["false_merges"] == 0
    assert m["vi_split"] > 1.0 and m["false_splits"] >= 10
    assert m["precision"] == pytest.approx(1.0) and m["recall"] < 0.5
    assert m["n_segments"] == int(brain.fragments.max()) and m["n_bodies"] == 20


def test_perfect_and_merged_segmentations(brain):
    truth = brain.labels
    same = metrics(truth, truth)
    assert same["vi"] == 0 and same["arand"] == pytest.approx(0.0) and same["false_merges"] == same["false_splits"] == 0
    merged = np.where(truth == 7, 3, truth)
    m = metrics(merged, truth)
    assert_matches_skimage(merged, truth, m)
    assert m["false_merges"] == 1 and m["false_splits"] == 0 and m["vi_split"] == 0 and m["vi_merge"] > 0


def test_border_slop_is_not_a_false_merge(brain):
    truth = brain.labels
    grown = ndi.grey_dilation(truth, size=(1, 1, 3))  # every segment spills a voxel into its neighbours
    m = metrics(grown, truth)
    assert m["vi_merge"] > 0 and m["false_merges"] == 0


def test_background_kept_when_asked():
    truth, labels = blobs(5, 6), blobs(6, 8)
    m = metrics(labels, truth, ignore_background=False)
    split, merge = variation_of_information(truth, labels)
    assert (m["vi_split"], m["vi_merge"]) == (pytest.approx(split), pytest.approx(merge))


@pytest.mark.parametrize("chunks", [(7, 11, 13), (20, 40, 50)])
def test_dask_chunk_by_chunk_equals_numpy(brain, chunks):
    whole = metrics(brain.fragments, brain.labels)
    parts = metrics(da.from_array(brain.fragments, chunks=chunks), da.from_array(brain.labels, chunks=chunks))
    assert parts == pytest.approx(whole)
    table = contingency(da.from_array(brain.fragments, chunks=chunks), brain.labels)
    assert table.equals(contingency(brain.fragments, brain.labels))


def test_contingency_lists_every_overlap_once():
    truth, labels = blobs(7, 5), blobs(8, 6)
    table = contingency(labels, truth)
    pairs, counts = np.unique(np.stack([truth.ravel(), labels.ravel()]), axis=1, return_counts=True)
    np.testing.assert_array_equal(table[["truth", "label"]].to_numpy().T, pairs)
    np.testing.assert_array_equal(table["count"], counts)
    assert list(table.columns) == ["truth", "label", "count"]


def test_bad_input_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="same shape"):
        metrics(np.zeros((4, 4, 4), int), np.zeros((4, 4, 5), int))
    with pytest.raises(ValueError, match="integer ids"):
        metrics(np.zeros((4, 4, 4), float), np.zeros((4, 4, 4), int))


@pytest.mark.realdata
def test_medulla_metrics_match_scikit_image(shared_data, tmp_path_factory):
    from tests.medulla_cube import load

    cube = load(shared_data, tmp_path_factory.mktemp("medulla"))
    m = metrics(cube["fragments"], cube["truth"])  # its cost: benchmarks/bench_proofreading_queue.py
    assert_matches_skimage(cube["fragments"], cube["truth"], m)
    assert m["n_segments"] == 3051 and m["n_bodies"] == 525  # the data README's counts
    assert m["vi_split"] > m["vi_merge"]  # an over-segmentation
