"""The Connectome container: a neuron table, an edge table, and the NT-to-sign mapping.

Neuron ids are int64 everywhere because FlyWire root ids (about 7.2e17) do not fit in
int32 and lose digits in float64. Queries live in :mod:`connectome_queries`; the class
only forwards to them so that this file stays about the tables.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# Sign of a synapse from its presynaptic neurotransmitter, as in Shiu et al. 2024.
# A plain dict so a user can change it in place (e.g. Glu excitatory in another species,
# or add "Tyr"); every function also takes its own `nt_sign=` mapping.
NT_SIGN = {"ACh": 1, "DA": 1, "5-HT": 1, "OA": 1, "GABA": -1, "Glu": -1}

# Spellings found in other tools (FlyWire/Codex uses ACH, GLUT, SER, OCT), folded onto the
# names above so that a Codex table and a synapse detector agree on what "Glu" is.
NT_ALIASES = {
    "ach": "ACh", "acetylcholine": "ACh", "cholinergic": "ACh",
    "gaba": "GABA", "gabaergic": "GABA",
    "glu": "Glu", "glut": "Glu", "glutamate": "Glu", "glutamatergic": "Glu",
    "da": "DA", "dopamine": "DA", "dopaminergic": "DA",
    "5-ht": "5-HT", "5ht": "5-HT", "ser": "5-HT", "serotonin": "5-HT",
    "oa": "OA", "oct": "OA", "octopamine": "OA",
}

EDGE_COLUMNS = ["pre", "post", "syn_count", "nt", "sign"]
EDGE_KINDS = ("chemical", "electrical")

# The dtype pandas gives text by itself (the Arrow-backed "str" in pandas 3, object
# before): using it everywhere keeps tables built here equal to tables built by hand.
TEXT = pd.Series(["text"]).dtype


class ConnectomeError(ValueError):
    """Bad input for a connectome function; the message names the problem and the fix."""


class ConnectomeWarning(UserWarning):
    """Something in the input was counted, summed or left out; the message says what."""


def as_text(values, index=None) -> pd.Series:
    """Text column with NaN for missing values, in pandas' own text dtype."""
    series = pd.Series(values, index=index, dtype=object)
    return series.where(series.notna(), np.nan).astype(TEXT)


def canonical_nt(values, nt_sign: dict | None = None) -> np.ndarray:
    """NT names with known aliases folded onto the mapping's names (object array)."""
    mapping = NT_SIGN if nt_sign is None else nt_sign
    values = pd.Series(values, dtype=object)
    names = pd.unique(values.dropna())
    folded = {}
    for name in names:
        text = str(name).strip()
        alias = NT_ALIASES.get(text.lower())
        folded[name] = text if text in mapping or alias not in mapping else alias
    return values.map(folded).to_numpy(dtype=object)


def nt_signs(nt, nt_sign: dict | None = None, where: str = "") -> np.ndarray:
    """int8 sign of every NT name: the mapping's value, 0 for missing or unknown names.

    Unknown names give one ConnectomeWarning that lists them, so a typo ("Gaba ") or a
    transmitter the mapping lacks is seen rather than silently treated as neutral.
    """
    mapping = NT_SIGN if nt_sign is None else nt_sign
    nt = pd.Series(np.asarray(nt, dtype=object))
    codes, names = pd.factorize(nt)  # missing values get code -1
    lookup = np.array([int(mapping.get(name, 0)) for name in names] + [0], dtype=np.int8)
    unknown = sorted(str(name) for name in names if name not in mapping)
    if unknown:
        warnings.warn(
            f"Neurotransmitters not in the NT-to-sign mapping{where}: {unknown}; their sign is "
            f"0 (neither excitatory nor inhibitory). Known: {sorted(mapping)}. Pass nt_sign= "
            "with these names, or add them to napari_wbe.connectome.NT_SIGN.",
            ConnectomeWarning, stacklevel=3)
    return lookup[codes]


def empty_edges() -> pd.DataFrame:
    return pd.DataFrame({
        "pre": pd.Series(dtype="int64"), "post": pd.Series(dtype="int64"),
        "syn_count": pd.Series(dtype="int64"), "nt": pd.Series(dtype=TEXT),
        "sign": pd.Series(dtype="int8"), "kind": pd.Series(dtype=TEXT),
    })


def empty_neurons() -> pd.DataFrame:
    return pd.DataFrame(index=pd.Index([], dtype="int64", name="neuron_id"))


def _whole_numbers(column: pd.Series, name: str) -> np.ndarray:
    values = column.to_numpy()
    if values.dtype.kind in "iu":
        return values.astype(np.int64, copy=False)
    as_float = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(as_float) | (as_float != np.round(as_float))
    if bad.any():
        raise ConnectomeError(
            f"Column {name!r} must hold whole numbers; {int(bad.sum())} rows do not, e.g. "
            f"{column[bad].iloc[0]!r}. Neuron ids and synapse counts are integers.")
    return as_float.astype(np.int64)


def normalise_edges(edges: pd.DataFrame) -> pd.DataFrame:
    """Edge table with int64 ids and counts, int8 sign, text nt and kind, in column order."""
    missing = [c for c in ("pre", "post", "syn_count") if c not in edges.columns]
    if missing:
        raise ConnectomeError(
            f"Connectome edges lack the columns {missing}; an edge table needs {EDGE_COLUMNS} "
            f"(pre and post neuron ids, synapse count, NT, sign +1/-1/0) and optionally 'kind' "
            f"({' or '.join(EDGE_KINDS)}).")
    edges = edges.copy(deep=False)  # columns are replaced, never written into
    for name in ("pre", "post", "syn_count"):
        if edges[name].dtype != np.int64:
            edges[name] = _whole_numbers(edges[name], name)
    if len(edges) and edges["syn_count"].to_numpy().min() < 0:
        raise ConnectomeError("Edge column 'syn_count' has negative counts; counts are >= 0.")
    if "nt" not in edges.columns:
        edges["nt"] = as_text(np.full(len(edges), None, dtype=object), edges.index)
    elif edges["nt"].dtype != TEXT:
        edges["nt"] = as_text(edges["nt"].to_numpy(dtype=object), edges.index)
    if "sign" not in edges.columns:
        edges["sign"] = nt_signs(edges["nt"].to_numpy(dtype=object), where=" of the edges")
    elif edges["sign"].dtype != np.int8:
        edges["sign"] = np.sign(_whole_numbers(edges["sign"], "sign")).astype(np.int8)
    if "kind" not in edges.columns:
        edges["kind"] = as_text(np.full(len(edges), "chemical", dtype=object), edges.index)
    elif edges["kind"].dtype != TEXT:
        edges["kind"] = as_text(edges["kind"].to_numpy(dtype=object), edges.index)
    kinds = pd.unique(edges["kind"])
    if any(k not in EDGE_KINDS for k in kinds):
        raise ConnectomeError(f"Edge column 'kind' holds {sorted(map(str, kinds))}; each edge is one of "
                              f"{EDGE_KINDS} (electrical = gap junction).")
    first = EDGE_COLUMNS + ["kind"]
    return edges[first + [c for c in edges.columns if c not in first]]


@dataclass(eq=False)
class Connectome:
    """Who synapses onto whom.

    neurons: one row per neuron, index = neuron id (int64, named "neuron_id"). Built from a
        segmentation it has size, centroid_z/y/x, type (if given), nt, nt_agreement,
        mixed_nt, sign, in_degree, out_degree, syn_in, syn_out and any user columns.
    edges: one row per connected pair and kind: pre, post, syn_count (int64), nt (the
        presynaptic neuron's transmitter), sign (int8: +1 excitatory, -1 inhibitory,
        0 unknown), kind ("chemical" or "electrical"). An electrical synapse (gap junction)
        is symmetric; it is stored as one directed row per direction the source lists,
        so "A-B" usually appears as A->B and B->A, each with the source's count.
    report: what building or reading found worth telling (excluded synapses, sums...).

    Treat the tables as read-only: queries keep an index of the edge table; after changing
    `edges` in place, call :meth:`invalidate`.
    """

    neurons: pd.DataFrame = field(default_factory=empty_neurons)
    edges: pd.DataFrame = field(default_factory=empty_edges)
    report: dict = field(default_factory=dict)
    _index: object = field(default=None, init=False, repr=False)

    def __post_init__(self):
        self.edges = normalise_edges(self.edges)
        neurons = self.neurons.copy(deep=False)
        neurons.index = pd.Index(_whole_numbers(neurons.index.to_series(), "neuron_id"),
                                 name="neuron_id")
        sign = neurons.get("sign")
        if sign is not None and sign.dtype.kind in "iuf" and sign.notna().all() and sign.dtype != np.int8:
            neurons["sign"] = np.sign(sign.to_numpy()).astype(np.int8)  # as in edges, e.g. after a CSV
        self.neurons = neurons

    def __repr__(self) -> str:
        kinds = self.edges["kind"].value_counts()
        detail = ", ".join(f"{n} {k}" for k, n in kinds.items()) if len(kinds) > 1 else ""
        return (f"Connectome({len(self.neurons)} neurons, {len(self.edges)} edges"
                f"{' (' + detail + ')' if detail else ''}, "
                f"{int(self.edges['syn_count'].sum())} synapses)")

    def equals(self, other: Connectome) -> bool:
        """Same neuron and edge tables (values, dtypes and order)."""
        return self.neurons.equals(other.neurons) and self.edges.equals(other.edges)

    # Queries: thin forwards to connectome_queries, which keeps the edge index.
    def index(self):
        """The edge index (CSR by pre and by post), built on first use and kept."""
        from .connectome_queries import EdgeIndex

        if self._index is None or not self._index.describes(self.edges, self.neurons):
            self._index = EdgeIndex(self.edges, self.neurons)
        return self._index

    def invalidate(self) -> None:
        """Forget the edge index (call after editing `edges` or `neurons` in place)."""
        self._index = None

    def partners(self, neuron_id: int, direction: str = "out", min_syn: int = 1,
                 kind: str | None = None) -> pd.DataFrame:
        """Partners of one neuron, strongest first: pre, post, partner, syn_count, nt,
        sign, kind, and partner_type / partner_nt when the neuron table has type / nt.
        direction "out" = its targets, "in" = its inputs; kind None = all edge kinds."""
        from .connectome_queries import partners

        return partners(self, neuron_id, direction, min_syn, kind)

    def downstream(self, ids, hops: int = 1, min_syn: int = 1, kind: str | None = "chemical") -> pd.Series:
        """Neurons reached from `ids` within `hops` steps (Series: hops, index neuron id)."""
        from .connectome_queries import reachable

        return reachable(self, ids, "out", hops, min_syn, kind)

    def upstream(self, ids, hops: int = 1, min_syn: int = 1, kind: str | None = "chemical") -> pd.Series:
        """Neurons that reach `ids` within `hops` steps (Series: hops, index neuron id)."""
        from .connectome_queries import reachable

        return reachable(self, ids, "in", hops, min_syn, kind)

    def shortest_path(self, a: int, b: int, min_syn: int = 1, kind: str | None = "chemical",
                      weighted: bool = False) -> list[int]:
        """Neuron ids on a shortest path from a to b ([] if none). Fewest hops, or with
        weighted=True the path of least total 1/syn_count (strong links are short)."""
        from .connectome_queries import shortest_path

        return shortest_path(self, a, b, min_syn, kind, weighted)

    def adjacency(self, min_syn: int = 1, signed: bool = False, kind: str | None = "chemical"):
        """(scipy.sparse CSR matrix [pre, post] of synapse counts, int64 neuron ids of its
        rows and columns). signed=True multiplies each count by the edge's sign."""
        from .connectome_queries import adjacency

        return adjacency(self, min_syn, signed, kind)

    def type_matrix(self, by: str = "type", min_syn: int = 1, kind: str | None = "chemical",
                    signed: bool = False) -> pd.DataFrame:
        """Synapses summed from each type (rows) to each type (columns); neurons with no
        value in column `by` count as "untyped"."""
        from .connectome_queries import type_matrix

        return type_matrix(self, by, min_syn, kind, signed)

    def degrees(self, kind: str | None = "chemical") -> pd.DataFrame:
        """in_degree, out_degree, syn_in, syn_out of every neuron (neurons and edge ids)."""
        from .connectome_queries import degrees

        return degrees(self, kind)

    def write(self, path, format: str | None = None, **options) -> str:
        """Save in one of :data:`connectome_formats.FORMATS` (guessed from `path`)."""
        from .connectome_formats import write

        return write(self, path, format=format, **options)
