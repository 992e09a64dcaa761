"""Scoring the chain against a ground truth (the phantom's): how faithful is the emulation
of a reconstructed circuit to the emulation of the true one?

    answer = truth_oracle(labels, truth)            # a simulated proofreader for Pipeline.proofread
    events = poisson_events(true_ids, 200.0, 1000)  # one stimulus, as explicit input kicks
    row = faithfulness(labels, cx, truth, true_cx, synapses, events, duration_ms=1000)

Recovered neurons are matched to true neurons by maximum voxel overlap, in both directions,
from one contingency table of (segment, true neuron) voxel counts (voxels where the truth
is background are left out):
- a segment's *identity* is the true neuron holding most of its voxels. Identities carry
  connectivity across: a recovered edge a -> b stands for the true edge identity(a) ->
  identity(b), and a segment is stimulated when its identity is (every piece of a split
  neuron gets that neuron's input, as when a researcher stimulates a cell type);
- a true neuron's *main segment* is the segment holding most of its voxels (background
  excluded). Rates are compared per true neuron: its rate in the true emulation against
  its main segment's rate in the reconstructed one. A false merge gives two true neurons
  one main segment (one rate for both); a false split gives the rate of the biggest piece.
The same input kicks (explicit events, not rates) drive both emulations, so a perfect
reconstruction gives the same spikes, not only the same rate statistics.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import emulation
from .proofreading_metrics import contingency, metrics

__all__ = [
    "faithfulness",
    "main_segments",
    "poisson_events",
    "segment_events",
    "segment_identities",
    "truth_oracle",
]


def _table(labels, truth) -> pd.DataFrame:
    table = contingency(labels, truth)
    return table[table["truth"] != 0]


def segment_identities(labels, truth, table: pd.DataFrame | None = None) -> pd.Series:
    """Index segment id -> the true neuron with most of its voxels (ties: the lower id)."""
    table = _table(labels, truth) if table is None else table
    table = table[table["label"] != 0].sort_values(["count", "truth"], ascending=[False, True], kind="stable")
    best = table.drop_duplicates("label")
    return pd.Series(best["truth"].to_numpy(np.int64), index=best["label"].to_numpy(np.int64)).sort_index()


def main_segments(labels, truth, table: pd.DataFrame | None = None) -> pd.Series:
    """Index true neuron -> the segment with most of its voxels (0 when none holds any)."""
    table = _table(labels, truth) if table is None else table
    bodies = np.unique(table["truth"].to_numpy(np.int64))
    table = table[table["label"] != 0].sort_values(["count", "label"], ascending=[False, True], kind="stable")
    best = table.drop_duplicates("truth")
    found = pd.Series(best["label"].to_numpy(np.int64), index=best["truth"].to_numpy(np.int64))
    return found.reindex(bodies, fill_value=0).astype(np.int64)


def truth_oracle(labels, truth):
    """answer(pair) -> bool for a MergeQueue over `labels`: merge when both segments have
    the same identity (see the module docstring). Segments it merges share that identity,
    so the id a merged segment keeps still answers for all of it."""
    identity = segment_identities(labels, truth).to_dict()

    def answer(pair: dict) -> bool:
        a, b = identity.get(int(pair["a"])), identity.get(int(pair["b"]))
        return a is not None and a == b

    return answer


def poisson_events(neuron_ids, rate_hz: float, duration_ms: float, seed: int = 0, dt: float = 0.1) -> pd.DataFrame:
    """Explicit input kicks (t_ms, neuron): in every step of `dt` a kick with probability
    rate x dt, as the engine's Poisson input gives them."""
    rng = np.random.default_rng(seed)
    n_steps = int(np.floor(duration_ms / dt + 1e-6))
    ids = np.asarray(list(neuron_ids), np.int64)
    hit = rng.random((len(ids), n_steps)) < rate_hz * dt / 1000.0
    which, step = np.nonzero(hit)
    order = np.argsort(step, kind="stable")
    return pd.DataFrame({"t_ms": step[order] * dt, "neuron": ids[which[order]]})


def segment_events(events: pd.DataFrame, identities: pd.Series, neuron_ids) -> pd.DataFrame:
    """The kicks of true neurons given to every segment (of `neuron_ids`) whose identity they are."""
    present = identities[identities.index.isin(np.asarray(neuron_ids))]
    pieces = pd.DataFrame({"segment": present.index.to_numpy(np.int64), "neuron": present.to_numpy(np.int64)})
    mapped = events.merge(pieces, on="neuron", how="inner")
    mapped = mapped.sort_values(["t_ms", "segment"], kind="stable")
    return pd.DataFrame({"t_ms": mapped["t_ms"].to_numpy(), "neuron": mapped["segment"].to_numpy(np.int64)})


def faithfulness(labels, cx, truth, true_cx, synapses: pd.DataFrame, events: pd.DataFrame,
                 duration_ms: float = 1000.0, true_simulation=None, **simulate_options) -> dict:
    """One row of the faithfulness table of a reconstruction (`labels` and their connectome
    `cx`) against the truth: segmentation error (VI, adapted Rand error), the fraction of
    true edges and of true synapses recovered, and how the two emulations driven by the
    same `events` (kicks to true neurons, see `poisson_events`) agree.

    A true edge pre -> post is recovered when `cx` has the edge main(pre) -> main(post)
    between two different segments; a true synapse when its pre and post voxels lie in
    main(pre) and main(post) (different segments), so both splits and merges lose them,
    as both lose them to the emulation of the main segments. rate_r: Pearson correlation of per-neuron rates over all true neurons;
    rate_r_unstimulated: over those not stimulated; fraction_firing: true neurons with at
    least one spike in the true emulation (of all, and of the unstimulated).
    """
    table = _table(labels, truth)
    identity = segment_identities(labels, truth, table)
    main = main_segments(labels, truth, table)
    scores = metrics(None, None, table=table)
    row = {"vi": scores["vi"], "vi_split": scores["vi_split"], "vi_merge": scores["vi_merge"],
           "arand": scores["arand"], "n_segments": scores["n_segments"]}

    true_edges = true_cx.edges[["pre", "post"]].to_numpy(np.int64)
    pre_main, post_main = (main.reindex(true_edges[:, k], fill_value=0).to_numpy() for k in (0, 1))
    found = set(zip(cx.edges["pre"].tolist(), cx.edges["post"].tolist()))
    kept = [(a, b) in found and a != b for a, b in zip(pre_main.tolist(), post_main.tolist())]
    row["edges_recovered"] = float(np.mean(kept)) if len(kept) else 1.0

    ends = [np.asarray(labels[tuple(synapses[f"{side}_{axis}"].to_numpy() for axis in "zyx")]
                       if isinstance(labels, np.ndarray) else _values_at(labels, synapses, side), np.int64)
            for side in ("pre", "post")]
    pre_main = main.reindex(synapses["pre"].to_numpy(), fill_value=0).to_numpy()
    post_main = main.reindex(synapses["post"].to_numpy(), fill_value=0).to_numpy()
    right = (ends[0] == pre_main) & (ends[1] == post_main) & (pre_main != post_main) & (pre_main != 0)
    row["synapses_recovered"] = float(np.mean(right)) if len(synapses) else 1.0

    if true_simulation is None:
        true_simulation = emulation.simulate(true_cx, input_events=events, duration_ms=duration_ms,
                                             **simulate_options)
    recovered = emulation.simulate(cx, input_events=segment_events(events, identity, cx.neurons.index),
                                   duration_ms=duration_ms, **simulate_options)
    true_rates = true_simulation.rates().set_index("neuron")["mean_hz"]
    rates = recovered.rates().set_index("neuron")["mean_hz"]
    bodies = true_rates.index.to_numpy()
    mine = rates.reindex(main.reindex(bodies, fill_value=0).to_numpy(), fill_value=0.0).to_numpy()
    theirs = true_rates.to_numpy()
    unstimulated = ~np.isin(bodies, events["neuron"].to_numpy())
    row["rate_r"] = _pearson(mine, theirs)
    row["rate_r_unstimulated"] = _pearson(mine[unstimulated], theirs[unstimulated])
    row["fraction_firing"] = float(np.mean(theirs > 0))
    row["fraction_firing_unstimulated"] = float(np.mean(theirs[unstimulated] > 0)) if unstimulated.any() else 0.0
    return row


def _values_at(labels, synapses, side) -> np.ndarray:
    from .connectome_voxels import labels_at

    coords = synapses[[f"{side}_{axis}" for axis in "zyx"]].to_numpy(np.int64)
    return labels_at(labels, coords)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")  # a constant has no correlation with anything
    return float(np.corrcoef(a, b)[0, 1])
