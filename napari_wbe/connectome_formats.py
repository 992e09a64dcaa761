"""Connectome files: read and write the formats researchers already have.

    cx = read(path)                      # format guessed from the path
    write(cx, path, format="codex")      # or cx.write(path, ...)

Formats (FORMATS): our own folder of parquet tables (lossless), FlyWire Codex
connections.csv with its neuron annotation tables, the Shiu et al. 2024 model's
Completeness + Connectivity pair (see connectome_flywire), and a plain edge list CSV.
Every reader returns int64 ids (FlyWire root ids exceed int32 and lose digits as float),
sums duplicate edges with a warning that says how many, and reads CSV with pyarrow. Every
writer checks first and writes each file under a temporary name, then renames it.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from .connectome_tables import (
    EDGE_KINDS,
    Connectome,
    ConnectomeError,
    ConnectomeWarning,
    as_text,
    normalise_edges,
)

FORMATS = {
    "parquet": "napari-wbe folder: neurons.parquet + edges.parquet (+ connectome.json); keeps everything",
    "codex": "FlyWire Codex connections.csv[.gz] (pre_root_id, post_root_id, neuropil, syn_count, "
             "nt_type), with neurons.csv / classification.csv / cell type tables beside it",
    "shiu": "Shiu et al. 2024 model: Completeness_<tag>.csv (neuron ids in index order) + "
            "Connectivity_<tag>.parquet (Presynaptic_ID, Postsynaptic_ID, ..., Excitatory)",
    "edgelist": "plain edge list CSV: source, target, weight, type (chemical | electrical)",
    "project": "a napari-wbe project folder (.wbe): its edges table and its labels' neuron table (read only)",
}
FOLDER_MARKER = "connectome.json"
FOLDER_FORMAT = {"format": "napari-wbe connectome", "version": 1}
# Spellings of the edge list's "type" column for gap junctions and chemical synapses.
KIND_ALIASES = {"chemical": "chemical", "chem": "chemical", "synapse": "chemical", "send": "chemical",
                "electrical": "electrical", "gapjunction": "electrical", "gap junction": "electrical",
                "gap_junction": "electrical", "gj": "electrical", "ej": "electrical"}


def _unknown_format(path, detail: str) -> ConnectomeError:
    listing = "\n".join(f"  {name}: {text}" for name, text in FORMATS.items())
    return ConnectomeError(f"Cannot tell the connectome format of {path} ({detail}). Pass format= one of:\n{listing}")


def _csv_header(path: str) -> list[str]:
    import gzip

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", errors="replace") as f:
        return [c.strip().lower() for c in f.readline().split(",")]


def guess_format(path, for_writing: bool = False) -> str:
    """The format a path holds (or, for writing, asks for), from its name and header."""
    path = os.fspath(path)
    name = os.path.basename(path.rstrip("/")).lower()
    if os.path.isdir(path):
        files = set(os.listdir(path))
        if "project.json" in files:
            return "project"
        if {"edges.parquet", FOLDER_MARKER} & files:
            return "parquet"
        if any(f.startswith(("Connectivity_", "Completeness_")) for f in files):
            return "shiu"
        if {"connections.csv", "connections.csv.gz"} & files:
            return "codex"
        if for_writing and not files:
            return "parquet"
        raise _unknown_format(path, "a folder without edges.parquet, Connectivity_*.parquet or connections.csv")
    if name.startswith(("connectivity_", "completeness_")):
        return "shiu"
    if name in ("edges.parquet", "neurons.parquet"):
        return "parquet"
    if name.endswith((".csv", ".csv.gz")):
        if name.startswith("connections"):
            return "codex"
        if not os.path.exists(path):
            return "edgelist" if for_writing else "missing"
        header = _csv_header(path)
        if "pre_root_id" in header:
            return "codex"
        if {"source", "target"} <= set(header):
            return "edgelist"
        raise _unknown_format(path, f"a CSV with columns {header}")
    if for_writing and ("." not in name or name.endswith(".connectome")):
        return "parquet"  # a new folder
    if not os.path.exists(path) and not for_writing:
        raise ConnectomeError(f"{path} does not exist.")
    raise _unknown_format(path, "an unrecognised name")


def read(path, format: str | None = None, **options) -> Connectome:
    """A Connectome from a file or folder in one of FORMATS (guessed when format=None)."""
    from . import connectome_flywire as flywire

    path = os.fspath(path)
    fmt = format or guess_format(path)
    if fmt == "missing" or not os.path.exists(path):
        raise ConnectomeError(f"{path} does not exist.")
    readers = {"parquet": _read_folder, "codex": flywire.read_codex, "shiu": flywire.read_shiu,
               "edgelist": read_edgelist, "project": _read_project}
    if fmt not in readers:
        raise _unknown_format(path, f"format={fmt!r} is not one of {list(FORMATS)}")
    return readers[fmt](path, **options)


def _read_project(path: str, labels: str | None = None) -> Connectome:
    """The connectome a project saved: its edges, and the neuron table of `labels` (the
    first labels with a neuron table by default)."""
    from .project import open_project

    project = open_project(path)
    if "edges" not in project.tables:
        raise ConnectomeError(f"The project {path} holds no connectome (no edges table); build one first.")
    names = [labels] if labels else [n for n in project.labels if n in project.features] or list(project.labels)
    neurons = project.features.get(names[0]) if names else None
    return Connectome(neurons=neurons if neurons is not None else pd.DataFrame(index=pd.Index([], dtype="int64")),
                      edges=project.tables["edges"])


def write(cx: Connectome, path, format: str | None = None, **options) -> str:
    """Save `cx`; returns the path written (a file or a folder)."""
    from . import connectome_flywire as flywire

    path = os.fspath(path)
    fmt = format or guess_format(path, for_writing=True)
    writers = {"parquet": _write_folder, "codex": flywire.write_codex, "shiu": flywire.write_shiu,
               "edgelist": write_edgelist}
    if fmt not in writers:
        raise _unknown_format(path, f"format={fmt!r} is not one of {list(FORMATS)}")
    return writers[fmt](cx, path, **options)


def atomic_write(target: str, write_to: Callable[[str], object]) -> None:
    """Write through a temporary name in the same folder, then rename: no half files."""
    folder, name = os.path.split(target)
    # The real name stays at the end so pandas still infers compression (".csv.gz").
    tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex[:8]}-{name}")
    try:
        write_to(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_csv(path: str, **kwargs) -> pd.DataFrame:
    """CSV through pyarrow (several times faster than the C parser on big tables)."""
    return pd.read_csv(path, engine="pyarrow", **kwargs)


def sum_duplicates(edges: pd.DataFrame, keys: list[str], where: str) -> pd.DataFrame:
    """One row per `keys`: duplicate rows' syn_count summed (other columns: first row's)."""
    pre, post = edges[keys[0]].to_numpy(), edges[keys[1]].to_numpy()
    if len(pre) < 2:
        return edges
    # Fast path for sorted tables (what we write): no equal neighbours means no duplicates.
    sorted_pairs = bool(np.all((pre[1:] > pre[:-1]) | ((pre[1:] == pre[:-1]) & (post[1:] >= post[:-1]))))
    if sorted_pairs and not np.any((pre[1:] == pre[:-1]) & (post[1:] == post[:-1])):
        return edges
    duplicated = edges.duplicated(keys)
    if not duplicated.any():
        return edges
    n_rows = int(duplicated.sum())
    warnings.warn(
        f"{where}: {n_rows} rows repeat an earlier row's {', '.join(keys)}; their synapse counts "
        f"were summed into one edge each ({len(edges) - n_rows} edges remain).",
        ConnectomeWarning, stacklevel=4)
    others = {c: "first" for c in edges.columns if c not in keys and c != "syn_count"}
    summed = edges.groupby(keys, sort=False, dropna=False).agg({"syn_count": "sum", **others})
    return summed.reset_index()[list(edges.columns)]


def canonical_kind(values, where: str) -> np.ndarray:
    kinds = pd.Series(values, dtype=object).astype(str).str.strip().str.lower()
    mapped = kinds.map(KIND_ALIASES)
    if mapped.isna().any():
        bad = sorted(set(kinds[mapped.isna()]))[:5]
        raise ConnectomeError(
            f"{where}: edge types {bad} are not known; use one of {EDGE_KINDS} "
            f"(or {sorted(KIND_ALIASES)}).")
    return mapped.to_numpy(dtype=object)


def _plain_report(report: dict) -> dict:
    plain = {}
    for key, value in report.items():
        if isinstance(value, np.ndarray) and value.dtype.kind in "iub":
            value = value.tolist()
        if isinstance(value, np.generic):
            value = value.item()
        try:
            json.dumps(value)
            plain[key] = value
        except TypeError:
            pass  # only JSON-like facts travel with the file
    return plain


FOLDER_FILES = {"neurons.parquet", "edges.parquet", FOLDER_MARKER}


def _write_folder(cx: Connectome, path: str) -> str:
    if os.path.basename(path) in ("edges.parquet", "neurons.parquet"):
        path = os.path.dirname(path) or "."
    path = path.rstrip("/") or "/"
    # Only an empty folder or one of ours is replaced: the swap below deletes the old one.
    if os.path.exists(path) and not (os.path.isdir(path) and set(os.listdir(path)) <= FOLDER_FILES):
        raise ConnectomeError(f"{path} exists and is not a napari-wbe connectome folder (or holds other "
                              "files); choose a new path so nothing in it is lost.")
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    os.makedirs(tmp)
    try:
        cx.neurons.to_parquet(os.path.join(tmp, "neurons.parquet"), index=True)
        cx.edges.to_parquet(os.path.join(tmp, "edges.parquet"), index=False)
        with open(os.path.join(tmp, FOLDER_MARKER), "w") as f:
            json.dump(FOLDER_FORMAT | {"report": _plain_report(cx.report)}, f, indent=1)
        # Swap whole folders so a reader never sees new edges with old neurons.
        old = f"{path}.old-{uuid.uuid4().hex[:8]}"
        if os.path.exists(path):
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _read_folder(path: str) -> Connectome:
    if os.path.isfile(path):
        path = os.path.dirname(path) or "."
    missing = [f for f in ("neurons.parquet", "edges.parquet") if not os.path.exists(os.path.join(path, f))]
    if missing:
        raise ConnectomeError(f"{path} lacks {missing}; a napari-wbe connectome folder holds "
                              "neurons.parquet and edges.parquet.")
    report = {}
    marker = os.path.join(path, FOLDER_MARKER)
    if os.path.exists(marker):
        with open(marker) as f:
            info = json.load(f)
        if int(info.get("version", 1)) > FOLDER_FORMAT["version"]:
            raise ConnectomeError(f"{path} was written by a newer napari-wbe; upgrade to read it.")
        report = info.get("report", {})
    neurons = pd.read_parquet(os.path.join(path, "neurons.parquet"))
    edges = pd.read_parquet(os.path.join(path, "edges.parquet"))
    keys = ["pre", "post", "kind"] if "kind" in edges.columns else ["pre", "post"]
    edges = sum_duplicates(edges, keys, os.path.join(path, "edges.parquet"))
    return Connectome(neurons=neurons, edges=edges, report=report)


def read_edgelist(path: str) -> Connectome:
    """source, target, weight, type; headers in any case. Names instead of numbers (as in
    c302's C. elegans list) become ids 1..n in name order, kept in neurons["name"]."""
    return edgelist_from_table(read_csv(path), path)


def edgelist_from_table(table: pd.DataFrame, where: str) -> Connectome:
    """A Connectome from an edge list already in memory (`where` names it in messages)."""
    table = table.rename(columns=lambda c: str(c).strip().lower())
    missing = [c for c in ("source", "target") if c not in table.columns]
    if missing:
        raise ConnectomeError(f"{where}: an edge list needs the columns source, target (and weight, "
                              f"type); it has {list(table.columns)}.")
    ends = [table["source"], table["target"]]
    neurons = None
    if len(table) and any(end.dtype.kind not in "iu" for end in ends):
        names = [end.astype(str).str.strip().to_numpy(dtype=str) for end in ends]
        unique = np.unique(np.concatenate(names))
        index = pd.Index(np.arange(1, len(unique) + 1, dtype=np.int64), name="neuron_id")
        neurons = pd.DataFrame({"name": as_text(unique, index)}, index=index)
        ends = [np.searchsorted(unique, n) + 1 for n in names]
    edges = pd.DataFrame({"pre": np.asarray(ends[0]), "post": np.asarray(ends[1])})
    if "weight" in table.columns:
        edges["syn_count"] = table["weight"].to_numpy()
    else:
        edges["syn_count"] = 1  # one row per synapse: duplicates below add them up
    edges["nt"] = as_text(table["nt"].to_numpy(dtype=object), edges.index) if "nt" in table.columns else None
    if "sign" in table.columns:
        edges["sign"] = table["sign"].fillna(0).to_numpy()
    kinds = table["type"] if "type" in table.columns else np.full(len(table), "chemical", dtype=object)
    edges["kind"] = as_text(canonical_kind(kinds, where), edges.index)
    edges = sum_duplicates(normalise_edges(edges), ["pre", "post", "kind"], where)
    if neurons is None:
        ids = np.union1d(edges["pre"].to_numpy(), edges["post"].to_numpy())
        neurons = pd.DataFrame(index=pd.Index(ids.astype(np.int64), name="neuron_id"))
    return Connectome(neurons=neurons, edges=edges)


def write_edgelist(cx: Connectome, path: str) -> str:
    """source, target, weight, type, then nt and sign when any edge has an NT (so the file
    round-trips; tools that want the plain four columns ignore the rest)."""
    edges = cx.edges
    table = pd.DataFrame({"source": edges["pre"], "target": edges["post"],
                          "weight": edges["syn_count"], "type": edges["kind"]})
    if edges["nt"].notna().any() or (edges["sign"] != 0).any():
        table["nt"], table["sign"] = edges["nt"], edges["sign"]
    atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))
    return path
