"""What a connectome needs from the label volume: the label under each synapse end, and
each label's size and centroid, for numpy arrays and chunk by chunk for dask/zarr ones.

Chunked volumes are read one block at a time: synapse ends are grouped by the block
they fall in so that every block is read once, and the per-block work is a dask task,
so the same code runs on a dask.distributed cluster for volumes larger than memory.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import dask
import dask.array as da
import numba
import numpy as np
import pandas as pd

from .connectome_tables import ConnectomeError
from .formats.common import lazy

# Blocks handed to dask per round: enough to keep both cores busy, few enough that a
# progress callback hears about it often and only a handful of blocks are in memory.
BLOCKS_PER_ROUND = 32
# An in-memory volume is walked in z slabs of about this many voxels (64 MB of uint32).
SLAB_VOXELS = 2**24


def as_chunked(labels) -> da.Array:
    """Any chunked array-like (dask, zarr, h5py, tensorstore) as dask."""
    return labels if isinstance(labels, da.Array) else lazy(labels, source="the label volume")


def _run_rounds(tasks, progress) -> list:
    results = []
    for start in range(0, len(tasks), BLOCKS_PER_ROUND):
        results += dask.compute(*tasks[start:start + BLOCKS_PER_ROUND])
        if progress is not None:
            progress(min(start + BLOCKS_PER_ROUND, len(tasks)), len(tasks))
    return results


def labels_at(labels, coords: np.ndarray, progress=None) -> np.ndarray:
    """int64 label under each (z, y, x) row of `coords` (already checked to be inside)."""
    if isinstance(labels, np.ndarray):
        return labels[coords[:, 0], coords[:, 1], coords[:, 2]].astype(np.int64)
    chunked = as_chunked(labels)
    block = np.zeros(len(coords), np.int64)
    corners = []
    for axis, sizes in enumerate(chunked.chunks):
        edges = np.cumsum(sizes)
        where = np.searchsorted(edges, coords[:, axis], side="right")
        corners.append(np.r_[0, edges[:-1]])
        block = block * len(sizes) + where
    order = np.argsort(block, kind="stable")
    starts = np.flatnonzero(np.r_[True, block[order][1:] != block[order][:-1]]) if len(order) else []
    groups = np.split(order, starts[1:]) if len(order) else []
    tasks = []
    for rows in groups:
        where = np.unravel_index(int(block[rows[0]]), chunked.numblocks)
        origin = np.array([corners[axis][i] for axis, i in enumerate(where)])
        tasks.append(dask.delayed(_pick)(chunked.blocks[where], coords[rows] - origin))
    found = np.zeros(len(coords), np.int64)
    for rows, values in zip(groups, _run_rounds(tasks, progress)):
        found[rows] = values
    return found


def _pick(block: np.ndarray, local: np.ndarray) -> np.ndarray:
    block = np.asarray(block)
    return block[local[:, 0], local[:, 1], local[:, 2]].astype(np.int64)


@numba.njit(cache=True, nogil=True)
def _accumulate(block, counts, sums):
    """counts[l] += 1 and sums[l] += (z, y, x) for every voxel of label l > 0: one pass,
    where np.bincount would need a pass and a weight volume per sum."""
    nz, ny, nx = block.shape
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                label = block[z, y, x]
                if label != 0:
                    counts[label] += 1
                    sums[label, 0] += z
                    sums[label, 1] += y
                    sums[label, 2] += x


def _block_stats(block: np.ndarray, origin: np.ndarray):
    """(ids, voxel counts, int64 coordinate sums) of the labels in one block.

    Sums are integers so the centroid is exact and independent of how the volume was
    chunked. Small ids index the tables directly; large ones (e.g. FlyWire root ids in a
    uint64 volume) are first replaced by their rank in the block.
    """
    block = np.ascontiguousarray(block)
    if block.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int64)
    if block.dtype.kind == "i" and int(block.min()) < 0:
        raise ConnectomeError("The label volume has negative labels; labels are 0 (background) "
                              "or positive neuron ids.")
    top = int(block.max())
    if top < max(2**21, block.size // 4):  # tables of at most ~32 bytes per voxel of the block
        counts, sums = np.zeros(top + 1, np.int64), np.zeros((top + 1, 3), np.int64)
        _accumulate(block, counts, sums)
        ids = np.flatnonzero(counts)
    else:
        present, inverse = np.unique(block, return_inverse=True)
        # Rank 0 is background when the block has any; neurons get ranks from 1 up.
        ranks = inverse.reshape(block.shape).astype(np.int64) + int(present[0] != 0)
        ids = present[present != 0].astype(np.int64)
        counts, sums = np.zeros(len(ids) + 1, np.int64), np.zeros((len(ids) + 1, 3), np.int64)
        _accumulate(ranks, counts, sums)
        return ids, counts[1:], sums[1:] + counts[1:, None] * origin
    return ids.astype(np.int64), counts[ids], sums[ids] + counts[ids, None] * origin


def _numpy_slab_stats(labels: np.ndarray, progress) -> list:
    """Per-slab stats of an in-memory volume on a few threads (the kernel drops the GIL).
    Views, not dask: dask would copy every slab of an array that is already in memory."""
    plane = int(np.prod(labels.shape[1:])) or 1
    step = max(1, SLAB_VOXELS // plane)
    starts = list(range(0, labels.shape[0], step))
    workers = min(len(starts), os.cpu_count() or 1, 4) or 1
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(_block_stats, labels[z:z + step], np.array([z, 0, 0], np.int64))
                   for z in starts]
        parts = []
        for done, future in enumerate(futures, 1):
            parts.append(future.result())
            if progress is not None:
                progress(done, len(futures))
    return parts


def label_stats(labels, progress=None) -> pd.DataFrame:
    """size (voxels) and centroid_z/y/x (voxel units) of every non-zero label, by id."""
    if isinstance(labels, np.ndarray):
        parts = _numpy_slab_stats(labels, progress)
    else:
        chunked = as_chunked(labels)
        corners = [np.r_[0, np.cumsum(sizes)[:-1]] for sizes in chunked.chunks]
        tasks = []
        for where in np.ndindex(*chunked.numblocks):
            origin = np.array([corners[axis][i] for axis, i in enumerate(where)], np.int64)
            tasks.append(dask.delayed(_block_stats)(chunked.blocks[where], origin))
        parts = _run_rounds(tasks, progress)
    ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    counts = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    sums = np.concatenate([p[2] for p in parts]) if parts else np.zeros((0, 3), np.int64)
    unique, inverse = np.unique(ids, return_inverse=True)
    size = np.bincount(inverse, weights=counts, minlength=len(unique)).astype(np.int64)
    table = pd.DataFrame({"size": size}, index=pd.Index(unique, name="neuron_id"))
    for axis, name in enumerate(("centroid_z", "centroid_y", "centroid_x")):
        # A label split over blocks: add the integer sums first, divide once.
        total_sum = np.zeros(len(unique), np.int64)
        np.add.at(total_sum, inverse, sums[:, axis])
        table[name] = total_sum / np.maximum(size, 1)
    return table
