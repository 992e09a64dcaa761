"""The network the engine runs: neuron ids <-> indices and chemical weights in CSR by pre.

Kept apart from the connectome tables because the engine wants flat arrays: for each
presynaptic index j, its targets are `targets[indptr[j]:indptr[j+1]]` with `weights` in
the same slots, so delivering a spike is one contiguous read.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numba
import numpy as np
import pandas as pd

from ..id_hash import id_table, positions
from .params import EmulationError, EmulationWarning, ModelParams


@dataclass
class Network:
    ids: np.ndarray        # int64 neuron id of each index
    indptr: np.ndarray     # int64, len n + 1: CSR row pointer by presynaptic index
    targets: np.ndarray    # int32 postsynaptic index of each synapse slot
    weights: np.ndarray    # float64 mV added to g per presynaptic spike (syn_count x sign x w_syn)
    neurons: pd.DataFrame  # the connectome's neuron table, rows in index order
    _table: np.ndarray | None = field(default=None, repr=False)  # id -> index hash table

    @property
    def n(self) -> int:
        return len(self.ids)

    def index_of(self, ids, what: str = "neuron ids") -> np.ndarray:
        """int64 indices of neuron ids; unknown ids are an error that lists a few."""
        ids = np.asarray(ids)
        if ids.size == 0:
            return np.zeros(0, dtype=np.int64)
        if ids.dtype.kind not in "iu":
            as_float = np.asarray(ids, dtype=np.float64)
            if not np.all(as_float == np.round(as_float)):
                raise EmulationError(f"{what} must be whole-number neuron ids; got {ids[:5].tolist()}.")
        if self._table is None:  # built once: simulate looks ids up many times
            self._table = id_table(self.ids)
        found = positions(self._table, ids.astype(np.int64))
        if (found < 0).any():
            missing = np.unique(ids[found < 0])
            raise EmulationError(
                f"{len(missing)} {what} are not neurons of the connectome, e.g. {missing[:5].tolist()}; "
                "use ids from cx.neurons.index.")
        return found.astype(np.int64)

    def silenced_weights(self, silence_idx) -> np.ndarray:
        """The weights with every outgoing synapse of `silence_idx` set to 0 (a copy when
        anything is silenced: the network itself is never changed)."""
        if not len(silence_idx):
            return self.weights
        weights = self.weights.copy()
        for j in np.unique(np.asarray(silence_idx, dtype=np.int64)):
            weights[self.indptr[j]:self.indptr[j + 1]] = 0.0
        return weights


@numba.njit(cache=True)
def _counting_sort_by_pre(pre, n):
    """Stable order of edges by presynaptic index, and the CSR row pointer (O(edges))."""
    indptr = np.zeros(n + 1, dtype=np.int64)
    for p in pre:
        indptr[p + 1] += 1
    for j in range(n):
        indptr[j + 1] += indptr[j]
    fill = indptr[:-1].copy()
    order = np.empty(len(pre), dtype=np.int64)
    for e in range(len(pre)):
        order[fill[pre[e]]] = e
        fill[pre[e]] += 1
    return order, indptr


def build_network(cx, params: ModelParams | None = None) -> Network:
    """Network of a `Connectome`: chemical edges only, weights syn_count x sign x w_syn."""
    params = params or ModelParams()
    neurons = cx.neurons
    edges = cx.edges
    index = neurons.index
    if not index.is_unique:
        raise EmulationError("The connectome's neuron table has duplicate ids; each neuron must appear once.")
    if "kind" in edges.columns and len(edges):
        chemical = (edges["kind"] == "chemical").to_numpy(dtype=bool)
        if not chemical.all():
            warnings.warn(
                f"{int((~chemical).sum())} electrical edges (gap junctions) are ignored: the emulation "
                "models chemical synapses only.", EmulationWarning, stacklevel=2)
            edges = edges[chemical]
    pre = edges["pre"].to_numpy(dtype=np.int64)
    post = edges["post"].to_numpy(dtype=np.int64)
    table = id_table(index.to_numpy(dtype=np.int64))
    pre_idx, post_idx = positions(table, pre), positions(table, post)
    unknown = (pre_idx < 0) | (post_idx < 0)
    if unknown.any():
        e = np.flatnonzero(unknown)[0]
        raise EmulationError(
            f"{int(unknown.sum())} edges name neurons missing from the neuron table (e.g. {pre[e]} -> "
            f"{post[e]}); add those neurons to cx.neurons or drop the edges.")
    weights = (edges["syn_count"].to_numpy(dtype=np.float64)
               * edges["sign"].to_numpy(dtype=np.float64) * params.w_syn)
    if not np.isfinite(weights).all():
        raise EmulationError("Some synaptic weights are not finite (NaN or inf in syn_count, sign or "
                             "w_syn); fix the edge table or ModelParams.w_syn.")
    order, indptr = _counting_sort_by_pre(pre_idx, len(index))
    return Network(ids=index.to_numpy(dtype=np.int64), indptr=indptr,
                   targets=post_idx[order].astype(np.int32), weights=weights[order], neurons=neurons,
                   _table=table)
