"""Block-wise functions with margins: the same result as one whole-volume call, whatever
the chunking, with margins exchanged in memory or through face files on disk."""

import dask.array as da
import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from napari_wbe.chunked_halo import map_with_halo


def box_means(block, labels, radius=1):
    """Two outputs that read `radius` voxels around each voxel, from both inputs."""
    size = 2 * radius + 1
    return np.stack([uniform_filter(block[0], size, mode="reflect"),
                     uniform_filter(labels.astype(np.float32), size, mode="reflect")])


@pytest.mark.parametrize("chunks", [(5, 9, 11), (23, 37, 41), (2, 10, 40), (7, 3, 41), (23, 37, 3)])
@pytest.mark.parametrize("on_disk", [False, True])
def test_blocks_with_margins_equal_one_whole_volume_call(chunks, on_disk, tmp_path):
    rng = np.random.default_rng(0)
    image = rng.random((3, 23, 37, 41)).astype(np.float32)
    labels = rng.integers(0, 5, (23, 37, 41)).astype(np.int32)
    expected = box_means(image, labels, radius=2)
    result = map_with_halo(box_means, da.from_array(image, chunks=(3, *chunks)), 2, 2,
                           da.from_array(labels, chunks=chunks), radius=2,
                           scratch=str(tmp_path) if on_disk else None)
    assert result.chunks[1:] == da.from_array(labels, chunks=chunks).rechunk(result.chunks[1:]).chunks
    np.testing.assert_array_equal(result.compute(), expected)
    if on_disk and chunks != image.shape[1:]:  # faces are written once, before any block is computed
        assert any(tmp_path.rglob("*.npy"))


def test_blocks_thinner_than_the_margin_are_merged_into_their_neighbour():
    image = np.arange(2 * 10 * 4 * 4, dtype=np.float32).reshape(2, 10, 4, 4)
    result = map_with_halo(lambda b: uniform_filter(b[:1], (1, 7, 1, 1), mode="reflect"),
                           da.from_array(image, chunks=(2, 4, 4, 4)), 3, 1)
    assert min(result.chunks[1]) >= 3
    np.testing.assert_array_equal(result.compute(), uniform_filter(image[:1], (1, 7, 1, 1), mode="reflect"))
