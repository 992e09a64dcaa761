"""Ids to indices through the numba hash table equals pandas' indexer, FlyWire-sized ids included."""

import numpy as np
import pandas as pd

from napari_wbe.id_hash import id_table, positions


def test_positions_equal_pandas_get_indexer():
    rng = np.random.default_rng(0)
    ids = np.unique(rng.integers(1, 2**62, 5_000))  # root ids far beyond int32
    values = np.concatenate([rng.choice(ids, 20_000), [0, -5, 7, ids.max() + 1]])  # absent ones too
    np.testing.assert_array_equal(positions(id_table(ids), values), pd.Index(ids).get_indexer(values))
