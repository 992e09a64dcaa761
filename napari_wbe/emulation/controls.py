"""Controls and sweeps: shuffled connectomes (is it the wiring or just the numbers?) and
readout rate vs stimulus rate (figure 1 of Shiu et al. 2024)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .network import build_network
from .params import ModelParams


def _with_edges(cx, edges):
    from ..connectome import Connectome

    return Connectome(neurons=cx.neurons, edges=edges.reset_index(drop=True),
                      report={**cx.report, "shuffled": True})


def _chemical(edges):
    return (edges["kind"] == "chemical").to_numpy() if "kind" in edges.columns else np.ones(len(edges), bool)


def shuffle_weights(cx, seed=0):
    """Same wiring, synapse counts and signs permuted among the chemical edges."""
    rng = np.random.default_rng(seed)
    edges = cx.edges.copy()
    rows = np.flatnonzero(_chemical(edges))
    perm = rows[rng.permutation(len(rows))]
    for name in ("syn_count", "sign", "nt"):
        if name in edges.columns:
            edges.iloc[rows, edges.columns.get_loc(name)] = edges[name].to_numpy()[perm]
    return _with_edges(cx, edges)


def shuffle_targets(cx, seed=0):
    """Targets permuted among the chemical edges: every neuron keeps its in- and out-degree
    and its synapse counts and sign (they belong to the presynaptic side); who connects to
    whom is random. Like the configuration model, it may create self-loops or repeats."""
    rng = np.random.default_rng(seed)
    edges = cx.edges.copy()
    rows = np.flatnonzero(_chemical(edges))
    col = edges.columns.get_loc("post")
    edges.iloc[rows, col] = edges["post"].to_numpy()[rows[rng.permutation(len(rows))]]
    return _with_edges(cx, edges)


def frequency_sweep(cx, stimulated, readout, rates, duration_ms=1000.0, trials=10, params=None,
                    seed=0, **options) -> pd.DataFrame:
    """Rate of each readout neuron (mean, SD over trials) for each stimulus rate applied to
    all `stimulated` neurons. Returns columns stimulus_hz, neuron, mean_hz, sd_hz."""
    from .simulate import simulate

    params = params or ModelParams()
    net = build_network(cx, params)
    readout = list(np.atleast_1d(readout))
    rows = []
    for rate in rates:
        result = simulate(cx, stimulus={int(n): float(rate) for n in np.atleast_1d(stimulated)},
                          duration_ms=duration_ms, trials=trials, params=params, seed=seed,
                          network=net, **options)
        table = result.rates().set_index("neuron").loc[readout].reset_index()
        table.insert(0, "stimulus_hz", float(rate))
        rows.append(table)
    return pd.concat(rows, ignore_index=True)
