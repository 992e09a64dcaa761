"""The connectome: a neuron table and an edge table.

Only the container lives here for now; synapse assignment, queries and file formats
come with the connectivity issue. Neuron ids are int64 because FlyWire root ids do not
fit in int32.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

# Sign of a synapse from its presynaptic neurotransmitter, as in Shiu et al. 2024.
# A plain dict so a user can change it (e.g. Glu excitatory in another species).
NT_SIGN = {"ACh": 1, "DA": 1, "5-HT": 1, "OA": 1, "GABA": -1, "Glu": -1}

EDGE_COLUMNS = ["pre", "post", "syn_count", "nt", "sign"]


def _empty_edges() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pre": pd.Series(dtype="int64"),
            "post": pd.Series(dtype="int64"),
            "syn_count": pd.Series(dtype="int64"),
            "nt": pd.Series(dtype="object"),
            "sign": pd.Series(dtype="int8"),
        }
    )


def _empty_neurons() -> pd.DataFrame:
    return pd.DataFrame(index=pd.Index([], dtype="int64", name="neuron_id"))


@dataclass
class Connectome:
    """Who synapses onto whom.

    neurons: one row per neuron, index = neuron id (int64).
    edges: one row per connected pair: pre, post, syn_count, nt, sign.
    """

    neurons: pd.DataFrame = field(default_factory=_empty_neurons)
    edges: pd.DataFrame = field(default_factory=_empty_edges)

    def __post_init__(self):
        missing = [c for c in EDGE_COLUMNS if c not in self.edges.columns]
        if missing:
            raise ValueError(
                f"Connectome edges lack the columns {missing}; an edge table needs "
                f"{EDGE_COLUMNS} (pre and post neuron ids, synapse count, NT, sign +1/-1)."
            )
        self.neurons.index = self.neurons.index.astype("int64")
        self.neurons.index.name = "neuron_id"
        self.edges = self.edges.astype({"pre": "int64", "post": "int64", "syn_count": "int64"})

    def __repr__(self) -> str:
        return (
            f"Connectome({len(self.neurons)} neurons, {len(self.edges)} edges, "
            f"{int(self.edges['syn_count'].sum())} synapses)"
        )
