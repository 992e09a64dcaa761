"""Chunk-wise connected components and adjacency equal whole-volume results."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.measure import label

from napari_wbe.chunked_labels import join_by_value, label_equal_values, label_means, touching_pairs


def blobs(seed: int, shape=(30, 50, 60), n_values=4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ndi.median_filter(rng.integers(0, n_values, shape), 3)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("chunks", [(7, 11, 13), (30, 25, 60), (16, 50, 20)])
def test_chunked_components_equal_whole_volume(seed, chunks):
    values = blobs(seed)
    whole, whole_table = label_equal_values(values, min_size=4)
    parts, parts_table = label_equal_values(da.from_array(values, chunks=chunks), min_size=4)
    np.testing.assert_array_equal(whole, parts.compute())
    assert whole_table.equals(parts_table)


def test_components_match_scikit_image_and_are_numbered_in_scan_order():
    values = blobs(3)
    labels, table = label_equal_values(values)
    reference = label(values, background=0, connectivity=1)
    # the same partition of the voxels ...
    pairs = np.unique(np.stack([labels.ravel(), reference.ravel()]), axis=1)
    assert len(pairs[0]) == len(np.unique(labels)) == len(np.unique(reference))
    # ... numbered by first voxel, with each region's value and size
    assert list(table["first_index"]) == sorted(table["first_index"])
    flat = labels.ravel()
    for row in table.head(20).itertuples():
        assert flat[row.first_index] == row.label and values.ravel()[row.first_index] == row.value
        assert (flat == row.label).sum() == row.size


def test_small_regions_are_dropped():
    values = np.zeros((5, 20, 20), int)
    values[1:4, 2:8, 2:8] = 1  # 108 voxels
    values[2, 15, 15] = 2  # 1 voxel
    labels, table = label_equal_values(values, min_size=2)
    assert list(table["size"]) == [108] and set(np.unique(labels)) == {0, 1}


def test_touching_pairs_across_chunks():
    labels = np.zeros((4, 10, 10), np.uint32)
    labels[:, :, :5], labels[:, :, 5:] = 1, 2
    labels[0, 0, 0] = 3
    whole = touching_pairs(labels)
    chunked = touching_pairs(da.from_array(labels, chunks=(2, 5, 5)))
    np.testing.assert_array_equal(whole, chunked)
    assert whole.tolist() == [[1, 2], [1, 3]]


def test_label_means():
    labels = np.array([[[0, 1, 1, 2]]])
    values = np.array([[[9.0, 1.0, 3.0, 5.0]]])
    np.testing.assert_allclose(label_means(labels, values, np.array([1, 2, 7])), [2.0, 5.0, 0.0])


def test_neighbouring_values_that_differ_in_every_voxel():
    values = (np.indices((3, 4, 9)).sum(axis=0) % 2 + 1)  # a checkerboard: every voxel its own region
    labels, table = label_equal_values(values)
    assert len(table) == values.size and sorted(labels.ravel()) == list(range(1, values.size + 1))
    parts, parts_table = label_equal_values(da.from_array(values, chunks=(2, 3, 4)))
    np.testing.assert_array_equal(parts.compute(), labels)
    assert parts_table.equals(table)


@pytest.mark.parametrize("chunks", [(7, 11, 13), (16, 50, 20)])
def test_joining_the_regions_of_some_values(chunks):
    values = blobs(3)
    pieces, table = label_equal_values(values, min_size=4)
    joined, joined_table = join_by_value(pieces, table, [2])
    # value 2: one label wherever its pieces lie; values 1 and 3: their pieces as before
    assert len(np.unique(joined[(values == 2) & (pieces > 0)])) == 1 and joined_table["n_pieces"].max() == (table["value"] == 2).sum()
    for value in (1, 3):
        inside = (values == value) & (pieces > 0)
        assert len(np.unique(joined[inside])) == len(np.unique(pieces[inside]))
    assert joined_table["size"].sum() == table["size"].sum()
    assert joined_table["label"].tolist() == list(range(1, len(joined_table) + 1))
    assert joined_table["first_index"].is_monotonic_increasing  # numbered in scan order
    lazy, lazy_table = label_equal_values(da.from_array(values, chunks=chunks), min_size=4)
    lazy, lazy_table = join_by_value(lazy, lazy_table, [2])
    np.testing.assert_array_equal(lazy.compute(), joined)
    assert lazy_table.equals(joined_table)
