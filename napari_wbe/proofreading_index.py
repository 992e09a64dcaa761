"""Bounding boxes of every label, kept up to date by the editor, so an edit reads and
writes only the boxes of the labels it involves (fast on volumes of any size)."""

from __future__ import annotations

import numba
import numpy as np

from .id_hash import find_slot as _find

# Labels are read in slabs of this many z-planes: bounded memory for zarr-backed volumes.
_SLAB_VOXELS = 1 << 25


@numba.njit(cache=True, nogil=True)
def _scan(block, z_start, z_offset, table, boxes, counts, n):
    """Grow boxes (z0, y0, x0, z1, y1, x1 inclusive) and voxel counts over the planes of
    `block` from z_start; `table` maps a label to its row in `boxes`. Returns (n, z): z is
    the plane to resume from once the arrays are larger, or -1 when the block is done."""
    nz, ny, nx = block.shape
    for z in range(z_start, nz):
        if n + ny * nx > len(boxes) or 2 * (n + ny * nx) > len(table):
            return n, z  # this plane might not fit
        zz = z + z_offset
        last, slot = 0, -1
        for y in range(ny):
            for x in range(nx):
                value = np.int64(block[z, y, x])
                if value == 0:
                    continue
                if value != last:  # neighbouring voxels mostly share a label: skip the lookup
                    last = value
                    i = _find(table, value)
                    if table[i, 0] == 0:
                        table[i, 0], table[i, 1] = value, n
                        boxes[n, 0], boxes[n, 1], boxes[n, 2] = zz, y, x
                        boxes[n, 3], boxes[n, 4], boxes[n, 5] = zz, y, x
                        n += 1
                    slot = table[i, 1]
                boxes[slot, 0] = min(boxes[slot, 0], zz)
                boxes[slot, 1] = min(boxes[slot, 1], y)
                boxes[slot, 2] = min(boxes[slot, 2], x)
                boxes[slot, 3] = max(boxes[slot, 3], zz)
                boxes[slot, 4] = max(boxes[slot, 4], y)
                boxes[slot, 5] = max(boxes[slot, 5], x)
                counts[slot] += 1
    return n, -1


def label_boxes(labels) -> tuple[dict[int, tuple[int, ...]], dict[int, int]]:
    """{label: (z0, y0, x0, z1, y1, x1) with exclusive stops} and {label: voxel count}."""
    plane = int(np.prod(labels.shape[1:]))
    rows = 2 * plane + 1024
    table = np.zeros((1 << int(np.ceil(np.log2(2 * rows))), 2), np.int64)
    boxes, counts, n = np.empty((rows, 6), np.int64), np.zeros(rows, np.int64), 0
    step = max(1, _SLAB_VOXELS // max(plane, 1))
    for z in range(0, labels.shape[0], step):
        block, resume = np.ascontiguousarray(labels[z:z + step]), 0
        while resume >= 0:
            n, resume = _scan(block, resume, z, table, boxes, counts, n)
            if resume >= 0:
                table, boxes, counts = _grown(table, boxes, counts)
    ids = np.zeros(n, np.int64)
    used = table[:, 0] != 0
    ids[table[used, 1]] = table[used, 0]
    boxes[:n, 3:] += 1
    return ({int(i): tuple(int(v) for v in b) for i, b in zip(ids, boxes[:n])},
            {int(i): int(c) for i, c in zip(ids, counts[:n])})


def _grown(table, boxes, counts):
    bigger = np.zeros((2 * len(table), 2), np.int64)
    _rehash(table, bigger)
    extra = len(boxes)
    return (bigger, np.concatenate((boxes, np.empty((extra, 6), np.int64))),
            np.concatenate((counts, np.zeros(extra, np.int64))))


@numba.njit(cache=True)
def _rehash(table, bigger):
    for row in range(len(table)):
        if table[row, 0] != 0:
            bigger[_find(bigger, table[row, 0])] = table[row]


def union(*boxes: tuple[int, ...]) -> tuple[int, ...]:
    n = len(boxes[0]) // 2
    return tuple(min(b[i] for b in boxes) for i in range(n)) + tuple(max(b[i] for b in boxes) for i in range(n, 2 * n))


def box_of_points(points: np.ndarray) -> tuple[int, ...]:
    points = np.asarray(points, dtype=np.int64).reshape(-1, 3)
    return tuple(int(v) for v in points.min(axis=0)) + tuple(int(v) + 1 for v in points.max(axis=0))
