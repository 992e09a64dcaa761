"""Neuron/label ids (any int64, e.g. FlyWire root ids) to dense indices, in O(1) each.

An open-addressing hash table in plain arrays that numba code can use: `table[:, 0]` holds
ids (0 marks an empty slot, so id 0 cannot be stored: it is background everywhere here),
`table[:, 1]` their index. Sorting-based look-ups (searchsorted) cost a log factor that
shows on tens of millions of edges; this does not.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def find_slot(table, key):
    """Slot of `key` in the table, or of the empty slot where it would go."""
    mask = np.uint64(len(table) - 1)
    i = (np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(17) & mask
    while table[i, 0] != 0 and table[i, 0] != key:
        i = (i + np.uint64(1)) & mask
    return i


@numba.njit(cache=True)
def _fill(table, ids):
    for index in range(len(ids)):
        slot = find_slot(table, ids[index])
        table[slot, 0], table[slot, 1] = ids[index], index


@numba.njit(cache=True, nogil=True)
def _lookup(table, values, out):
    for k in range(len(values)):
        slot = find_slot(table, values[k])
        out[k] = table[slot, 1] if table[slot, 0] == values[k] and values[k] != 0 else -1


def id_table(ids: np.ndarray) -> np.ndarray:
    """A hash table of non-zero, unique int64 `ids` -> their position in `ids`."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    table = np.zeros((1 << max(4, int(np.ceil(np.log2(2 * len(ids) + 1)))), 2), np.int64)  # at most half full
    _fill(table, ids)
    return table


def positions(table: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of each value in the ids the table was built from; -1 where absent."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    out = np.empty(len(values), np.int64)
    _lookup(table, values, out)
    return out
