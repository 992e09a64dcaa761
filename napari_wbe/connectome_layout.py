"""Positions for neurons that have no volume (e.g. C. elegans): a graph layout.

Classical multidimensional scaling of the hop distances between neurons (wiring ignoring
direction): neurons a few synapses apart land near each other, and the layout is
deterministic (no random start), so a sample looks the same in every session. Neurons
unconnected to the rest sit just outside the farthest distance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import shortest_path


def graph_layout(cx, dims: int = 3, size: float = 100.0) -> pd.DataFrame:
    """(z, y, x) per neuron id (index as cx.neurons), spread over about `size` units.
    Quadratic in the number of neurons: meant for small circuits (a few thousand)."""
    ids = cx.neurons.index
    pre, post = ids.get_indexer(cx.edges["pre"]), ids.get_indexer(cx.edges["post"])
    keep = (pre >= 0) & (post >= 0) & (pre != post)
    graph = coo_matrix((np.ones(keep.sum()), (pre[keep], post[keep])), shape=(len(ids), len(ids)))
    hops = shortest_path(graph.tocsr(), directed=False, unweighted=True)
    finite = np.isfinite(hops)
    hops[~finite] = (hops[finite].max() if finite.any() else 0) + 1
    # double-centred squared distances; the top eigenvectors are the best low-dim embedding
    n = len(ids)
    centring = np.eye(n) - 1.0 / n
    gram = -0.5 * centring @ (hops**2) @ centring
    values, vectors = np.linalg.eigh(gram)
    top = np.argsort(values)[::-1][:dims]
    coords = vectors[:, top] * np.sqrt(np.maximum(values[top], 0))
    spread = np.ptp(coords, axis=0)
    coords = (coords - coords.min(axis=0)) / np.where(spread > 0, spread, 1.0) * size
    return pd.DataFrame(coords, index=ids, columns=["z", "y", "x"][-dims:])
