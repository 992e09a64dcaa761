"""FlyWire file formats: Codex downloads and the Shiu et al. 2024 model's input files.

Codex ``connections.csv`` has one row per (pre, post, neuropil). A Connectome edge is a
pair of neurons, so the neuropil rows of a pair are added up and the edge keeps the
neuropil holding most of them in its ``neuropil`` column. Codex spells transmitters ACH,
GLUT, SER, OCT; they are read as ACh, Glu, 5-HT, OA and written back the Codex way.

The Shiu model reads ``Completeness_<tag>.csv`` (an unnamed first column of root ids in
the model's neuron order, and a Completed flag) and ``Connectivity_<tag>.parquet``
(Presynaptic_ID, Postsynaptic_ID, their Index in that order, Connectivity = synapse count,
Excitatory = +1/-1, and their product). Those files carry no transmitter names: edges
read from them have a sign but no nt. Both formats hold chemical synapses only.

CSV keeps no column types: a neuron column of text made only of digits (a barcode
"0101") reads back as numbers. The parquet folder keeps every type.
"""

from __future__ import annotations

import os
import re
import warnings

import numpy as np
import pandas as pd

from .connectome_formats import atomic_write, read_csv, sum_duplicates
from .connectome_tables import (
    Connectome,
    ConnectomeError,
    ConnectomeWarning,
    as_text,
    canonical_nt,
    nt_signs,
)

CODEX_COLUMNS = ["pre_root_id", "post_root_id", "neuropil", "syn_count", "nt_type"]
# Neuron tables of a Codex download, joined on root_id in this order when present.
CODEX_ANNOTATIONS = ("neurons", "classification", "consolidated_cell_types", "cell_types", "names")
# Where a neuron's "type" comes from when the tables have no "type" column.
CODEX_TYPE_SOURCES = ("primary_type", "cell_type", "hemibrain_type")
CODEX_NT = {"ACh": "ACH", "Glu": "GLUT", "5-HT": "SER", "OA": "OCT", "GABA": "GABA", "DA": "DA"}
SHIU_COLUMNS = ["Presynaptic_ID", "Postsynaptic_ID", "Presynaptic_Index", "Postsynaptic_Index",
                "Connectivity", "Excitatory", "Excitatory x Connectivity"]


def _ids(column: pd.Series, where: str) -> np.ndarray:
    if column.dtype.kind not in "iu" and len(column):
        raise ConnectomeError(
            f"{where}: neuron ids must be whole numbers with no blanks; column {column.name!r} "
            f"has dtype {column.dtype}. (Ids read as floats lose digits beyond 2**53.)")
    return column.to_numpy().astype(np.int64)


def _only_chemical(cx: Connectome, fmt: str) -> None:
    other = cx.edges["kind"] != "chemical"
    if other.any():
        raise ConnectomeError(
            f"The {fmt} format holds chemical synapses only, and {int(other.sum())} edges are "
            f"{sorted(set(cx.edges['kind'][other]))}. Save those with format='parquet' or "
            "'edgelist', or drop them: Connectome(cx.neurons, cx.edges[cx.edges.kind == 'chemical']).")


def _codex_file(path: str) -> str:
    if not os.path.isdir(path):
        return path
    for name in ("connections.csv", "connections.csv.gz"):
        if os.path.exists(os.path.join(path, name)):
            return os.path.join(path, name)
    raise ConnectomeError(f"{path} holds no connections.csv or connections.csv.gz.")


def read_codex(path: str, nt_sign: dict | None = None, annotations: bool = True) -> Connectome:
    """Codex connections (+ the neuron tables beside it when `annotations`)."""
    path = _codex_file(path)
    table = read_csv(path)
    missing = [c for c in ("pre_root_id", "post_root_id", "syn_count") if c not in table.columns]
    if missing:
        raise ConnectomeError(f"{path}: a Codex connections table needs {CODEX_COLUMNS} "
                              f"(neuropil, nt_type optional); missing {missing}.")
    rows = pd.DataFrame({"pre": _ids(table["pre_root_id"], path), "post": _ids(table["post_root_id"], path),
                         "syn_count": table["syn_count"].to_numpy()})
    has_neuropil = "neuropil" in table.columns and table["neuropil"].notna().any()
    rows["neuropil"] = table["neuropil"].to_numpy(dtype=object) if has_neuropil else None
    nt = table["nt_type"].to_numpy(dtype=object) if "nt_type" in table.columns else None
    rows["nt"] = canonical_nt(nt, nt_sign) if nt is not None else None
    rows = sum_duplicates(rows, ["pre", "post", "neuropil"], path)
    # The strongest neuropil of a pair first, so "first" below picks it.
    rows = rows.sort_values(["pre", "post", "syn_count", "neuropil"], ascending=[True, True, False, True],
                            kind="stable")
    edges = rows.groupby(["pre", "post"], sort=False).agg(
        syn_count=("syn_count", "sum"), nt=("nt", "first"), neuropil=("neuropil", "first")).reset_index()
    if not has_neuropil:
        edges = edges.drop(columns="neuropil")
    else:
        edges["neuropil"] = as_text(edges["neuropil"].to_numpy(dtype=object), edges.index)
    edges["nt"] = as_text(edges["nt"].to_numpy(dtype=object), edges.index)
    edges["sign"] = nt_signs(edges["nt"].to_numpy(dtype=object), nt_sign, where=f" of {path}")
    neurons = _codex_neurons(os.path.dirname(path), nt_sign) if annotations else None
    neurons = _with_edge_ids(neurons, edges)
    return Connectome(neurons=neurons, edges=edges, report={"source_rows": len(table)})


def _codex_neurons(folder: str, nt_sign: dict | None) -> pd.DataFrame | None:
    combined = None
    for stem in CODEX_ANNOTATIONS:
        found = [os.path.join(folder, stem + ext) for ext in (".csv", ".csv.gz")]
        found = [f for f in found if os.path.exists(f)]
        if not found:
            continue
        table = read_csv(found[0])
        if "root_id" not in table.columns:
            warnings.warn(f"{found[0]} has no root_id column; it was not read.", ConnectomeWarning, stacklevel=3)
            continue
        table.index = pd.Index(_ids(table.pop("root_id"), found[0]), name="neuron_id")
        if table.index.has_duplicates:
            n = int(table.index.duplicated().sum())
            warnings.warn(f"{found[0]}: {n} rows repeat a root_id; the first row of each was used.",
                          ConnectomeWarning, stacklevel=3)
            table = table[~table.index.duplicated()]
        if combined is None:
            combined = table
            continue
        new_ids = table.index[~table.index.isin(combined.index)]
        index = combined.index.append(new_ids)
        fresh = [c for c in table.columns if c not in combined.columns]
        combined = combined.reindex(index).join(table[fresh])
    if combined is None:
        return None
    if "nt_type" in combined.columns:
        nt = as_text(canonical_nt(combined["nt_type"].to_numpy(dtype=object), nt_sign), combined.index)
        at = list(combined.columns).index("nt_type")
        combined = combined.drop(columns="nt_type")
        combined.insert(at, "nt", nt)
    if "type" not in combined.columns:
        sources = [combined[c] for c in CODEX_TYPE_SOURCES if c in combined.columns]
        if sources:
            kind = sources[0]
            for more in sources[1:]:
                kind = kind.fillna(more)
            combined["type"] = kind
    return combined


def _with_edge_ids(neurons: pd.DataFrame | None, edges: pd.DataFrame) -> pd.DataFrame:
    """The neuron table plus a row for every edge id it lacks (sorted, at the end)."""
    ids = np.union1d(edges["pre"].to_numpy(), edges["post"].to_numpy())
    if neurons is None:
        return pd.DataFrame(index=pd.Index(ids, name="neuron_id"))
    extra = ids[~np.isin(ids, neurons.index.to_numpy())]
    return neurons if not len(extra) else neurons.reindex(neurons.index.append(pd.Index(extra)))


def write_codex(cx: Connectome, path: str, annotations: bool = True) -> str:
    """connections.csv (or the .csv/.csv.gz named) and, beside it, neurons.csv with the
    neuron table (root_id first; nt as nt_type in Codex spelling)."""
    _only_chemical(cx, "Codex")
    if not path.endswith((".csv", ".csv.gz")):
        os.makedirs(path, exist_ok=True)
        path = os.path.join(path, "connections.csv")
    edges = cx.edges
    nt = edges["nt"].to_numpy(dtype=object)
    table = pd.DataFrame({
        "pre_root_id": edges["pre"], "post_root_id": edges["post"],
        "neuropil": edges["neuropil"] if "neuropil" in edges.columns else None,
        "syn_count": edges["syn_count"],
        "nt_type": pd.Series(nt).map(lambda n: CODEX_NT.get(n, n)).to_numpy(dtype=object),
    })
    atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))
    if annotations and len(cx.neurons.columns):
        neurons = cx.neurons.copy()
        if "nt" in neurons.columns:
            at = list(neurons.columns).index("nt")
            codex_nt = neurons.pop("nt").map(lambda n: CODEX_NT.get(n, n)).astype(object)
            neurons.insert(at, "nt_type", codex_nt)
        neurons.index.name = "root_id"
        target = os.path.join(os.path.dirname(path), "neurons.csv")
        atomic_write(target, lambda tmp: neurons.to_csv(tmp, index=True))
    return path


def _shiu_files(path: str, tag: str | None, for_writing: bool) -> tuple[str, str]:
    name = os.path.basename(path)
    match = re.fullmatch(r"(?:Completeness|Connectivity)_(.+)\.(?:csv|parquet)", name)
    if match:
        folder, tag = os.path.dirname(path) or ".", match.group(1)
    else:
        folder = path
        if tag is None and not for_writing:
            tags = sorted(f[len("Connectivity_"):-len(".parquet")] for f in os.listdir(folder)
                          if f.startswith("Connectivity_") and f.endswith(".parquet"))
            if len(tags) != 1:
                raise ConnectomeError(f"{folder} holds Connectivity files for tags {tags}; pass tag= "
                                      "(e.g. tag='783') or the path of one file.")
            tag = tags[0]
        tag = tag or "wbe"
    return (os.path.join(folder, f"Completeness_{tag}.csv"), os.path.join(folder, f"Connectivity_{tag}.parquet"))


def read_shiu(path: str, tag: str | None = None) -> Connectome:
    """The model's neuron order (Completeness) and its weighted edges (Connectivity)."""
    completeness, connectivity = _shiu_files(path, tag, for_writing=False)
    for f in (completeness, connectivity):
        if not os.path.exists(f):
            raise ConnectomeError(f"{f} is missing; the Shiu model format is a Completeness_<tag>.csv "
                                  "and a Connectivity_<tag>.parquet side by side.")
    comp = read_csv(completeness)
    ids = _ids(comp.iloc[:, 0], completeness)
    neurons = pd.DataFrame(index=pd.Index(ids, name="neuron_id"))
    if "Completed" in comp.columns:
        neurons["completed"] = comp["Completed"].to_numpy()
    con = pd.read_parquet(connectivity)
    missing = [c for c in SHIU_COLUMNS[:2] + ["Connectivity"] if c not in con.columns]
    if missing:
        raise ConnectomeError(f"{connectivity} lacks {missing}; expected {SHIU_COLUMNS}.")
    pre, post = _ids(con["Presynaptic_ID"], connectivity), _ids(con["Postsynaptic_ID"], connectivity)
    for side, column in ((pre, "Presynaptic_Index"), (post, "Postsynaptic_Index")):
        if column in con.columns:
            at = con[column].to_numpy()
            if len(at) and (at.min() < 0 or at.max() >= len(ids) or np.any(ids[at] != side)):
                raise ConnectomeError(
                    f"{connectivity}: {column} does not point at the same neurons as the ids in "
                    f"{completeness}; the two files are from different versions.")
    unknown = ~np.isin(np.union1d(pre, post), ids)
    if unknown.any():
        raise ConnectomeError(f"{connectivity} names {int(unknown.sum())} neurons that {completeness} "
                              "lacks; the model cannot index them.")
    sign = np.sign(con["Excitatory"].to_numpy()) if "Excitatory" in con.columns else 0
    edges = pd.DataFrame({"pre": pre, "post": post, "syn_count": con["Connectivity"].to_numpy(),
                          "nt": None, "sign": sign})
    edges = sum_duplicates(edges, ["pre", "post"], connectivity)
    return Connectome(neurons=neurons, edges=edges)


def write_shiu(cx: Connectome, path: str, tag: str | None = None) -> str:
    """Completeness_<tag>.csv + Connectivity_<tag>.parquet in `path` (a folder, default tag
    "wbe"), or beside the file `path` names. Completed comes from neurons["completed"]
    (True where absent). Returns the Connectivity path."""
    _only_chemical(cx, "Shiu")
    completeness, connectivity = _shiu_files(path, tag, for_writing=True)
    os.makedirs(os.path.dirname(completeness), exist_ok=True)
    neurons = _with_edge_ids(cx.neurons, cx.edges)
    ids = neurons.index.to_numpy()
    done = neurons["completed"] if "completed" in neurons.columns else pd.Series(True, index=neurons.index)
    comp = pd.DataFrame({"Completed": done.fillna(True).astype(bool).to_numpy()}, index=ids)
    position = pd.Series(np.arange(len(ids), dtype=np.int64), index=ids)
    edges = cx.edges
    count, sign = edges["syn_count"].to_numpy(), edges["sign"].to_numpy().astype(np.int64)
    con = pd.DataFrame(dict(zip(SHIU_COLUMNS, [
        edges["pre"].to_numpy(), edges["post"].to_numpy(),
        position.reindex(edges["pre"]).to_numpy(), position.reindex(edges["post"]).to_numpy(),
        count, sign, sign * count])))
    atomic_write(completeness, lambda tmp: comp.to_csv(tmp))
    atomic_write(connectivity, lambda tmp: con.to_parquet(tmp, index=False))
    return connectivity
