"""A Connectome from a label volume and a table of synapses.

    cx = from_segmentation(labels, synapses)            # numpy, dask or zarr labels
    cx = from_segmentation(labels, synapses, neurons=old.neurons, min_confidence=0.8)

Each synapse's pre and post ends take the label under them. Synapses with an end on
background (label 0) or with both ends in one neuron (autapses) are not edges, but they
are counted in ``cx.report`` (with their row labels) and announced in a warning, so a
segmentation error that swallows synapses is seen. A neuron's transmitter is the most
common NT among its outgoing synapses; ``nt_agreement`` says how clear that vote was and
``mixed_nt`` flags neurons below ``mixed_below``, since Dale's law does not always hold.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .connectome_tables import (
    NT_SIGN,
    Connectome,
    ConnectomeError,
    ConnectomeWarning,
    as_text,
    canonical_nt,
    nt_signs,
)
from .connectome_voxels import label_stats, labels_at

SYNAPSE_COLUMNS = ["pre_z", "pre_y", "pre_x", "post_z", "post_y", "post_x"]
OPTIONAL_SYNAPSE_COLUMNS = ["nt", "confidence"]
# Columns from_segmentation computes; every other column of a given neuron table is the
# user's and is carried over unchanged.
COMPUTED_NEURON_COLUMNS = ["size", "centroid_z", "centroid_y", "centroid_x", "nt", "nt_agreement",
                           "mixed_nt", "sign", "in_degree", "out_degree", "syn_in", "syn_out"]


def from_segmentation(labels, synapses: pd.DataFrame, nt_sign: dict | None = None,
                      min_confidence: float | None = None, neurons: pd.DataFrame | None = None,
                      mixed_below: float = 0.7, neuron_stats: bool = True, progress=None) -> Connectome:
    """Assign synapses to labels and tabulate neurons and edges.

    labels: (z, y, x) integer array, numpy, dask or zarr-like (read block by block);
        0 is background. A multiscale list uses its finest level.
    synapses: DataFrame with pre_z, pre_y, pre_x, post_z, post_y, post_x in voxels of
        `labels` (floats are rounded to the nearest voxel) and optionally nt (per-synapse
        transmitter prediction) and confidence.
    nt_sign: NT name -> +1/-1/0 (default: NT_SIGN); names it lacks warn and get sign 0.
    min_confidence: synapses with a lower confidence are left out (and counted).
    neurons: an earlier neuron table (index = neuron id) whose own columns (type, notes,
        ...) are kept; its nt fills in for neurons without outgoing synapses.
    mixed_below: nt_agreement under which a neuron is flagged mixed_nt. The vote counts
        the synapses that made it into edges, so it describes the same synapses as syn_out.
    neuron_stats: False skips size and centroid (a pass over every voxel).
    progress: optional callable(done, total), in thousandths.
    """
    mapping = NT_SIGN if nt_sign is None else dict(nt_sign)
    labels = _check_labels(labels)
    coords = _synapse_coordinates(synapses, labels.shape)
    given = _check_neurons(neurons)
    report = {"n_synapses": len(synapses)}
    use = np.ones(len(synapses), bool)
    if min_confidence is not None:
        if "confidence" not in synapses.columns:
            raise ConnectomeError("min_confidence needs a 'confidence' column in the synapse table.")
        use = synapses["confidence"].to_numpy(dtype=float) >= float(min_confidence)  # NaN fails
    report["below_confidence"] = int((~use).sum())

    def step(lo, hi):
        return None if progress is None else (lambda done, total: progress(
            round(1000 * (lo + (hi - lo) * done / max(total, 1))), 1000))

    ends = labels_at(labels, np.concatenate([coords[:, :3], coords[:, 3:]]), step(0.0, 0.3))
    pre_id, post_id = ends[:len(coords)], ends[len(coords):]
    background = use & ((pre_id == 0) | (post_id == 0))
    autapse = use & (pre_id == post_id) & (pre_id != 0)
    counted = use & ~background & ~autapse
    _report_exclusions(report, synapses, pre_id, post_id, background, autapse)

    edges = _edge_counts(pre_id[counted], post_id[counted])
    votes = _nt_votes(pre_id[counted], synapses["nt"], counted, mapping) if "nt" in synapses.columns else None
    stats = label_stats(labels, step(0.3, 0.95)) if neuron_stats else None
    table = _neuron_table(stats, given, edges, votes, np.union1d(pre_id, post_id), mapping,
                          mixed_below, report)
    nt_of_pre = table["nt"].reindex(edges["pre"]).to_numpy(dtype=object)
    edges["nt"] = as_text(nt_of_pre, edges.index)
    edges["sign"] = table["sign"].reindex(edges["pre"]).to_numpy()
    edges["kind"] = as_text(np.full(len(edges), "chemical", dtype=object), edges.index)
    if progress is not None:
        progress(1000, 1000)
    return Connectome(neurons=table, edges=edges, report=report)


def _check_labels(labels):
    if isinstance(labels, (list, tuple)):
        labels = labels[0]  # multiscale: synapse coordinates refer to the finest level
    if not hasattr(labels, "shape") or not hasattr(labels, "dtype"):
        labels = np.asarray(labels)
    if len(labels.shape) != 3:
        raise ConnectomeError(f"labels must be a 3D (z, y, x) volume; got shape {tuple(labels.shape)}.")
    if np.dtype(getattr(labels.dtype, "numpy_dtype", labels.dtype)).kind not in "iu":  # tensorstore too
        raise ConnectomeError(
            f"labels must hold integer neuron ids (0 = background); got dtype {labels.dtype}. "
            "Convert with labels.astype('uint32') if the values are whole numbers.")
    return labels


def _synapse_coordinates(synapses, shape) -> np.ndarray:
    """(n, 6) int64 pre and post voxel coordinates, checked before any voxel is read."""
    if not isinstance(synapses, pd.DataFrame):
        raise ConnectomeError(f"synapses must be a pandas DataFrame; got {type(synapses).__name__}.")
    missing = [c for c in SYNAPSE_COLUMNS if c not in synapses.columns]
    if missing:
        raise ConnectomeError(
            f"The synapse table lacks the columns {missing}. Expected: {SYNAPSE_COLUMNS} "
            f"(voxel coordinates of each synapse's pre and post ends), optionally "
            f"{OPTIONAL_SYNAPSE_COLUMNS}; it has {list(synapses.columns)}.")
    columns = synapses[SYNAPSE_COLUMNS]
    if all(dtype.kind in "iu" for dtype in columns.dtypes):
        coords = columns.to_numpy(dtype=np.int64)
    else:
        values = columns.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values).all(axis=1)
        if bad.any():
            row = synapses.index[np.flatnonzero(bad)[0]]
            raise ConnectomeError(
                f"{int(bad.sum())} synapses have missing or non-numeric coordinates, e.g. row {row!r}: "
                f"{synapses.loc[row, SYNAPSE_COLUMNS].tolist()}.")
        coords = np.rint(values).astype(np.int64)
    limits = np.array(tuple(shape) * 2)
    outside = ((coords < 0) | (coords >= limits)).any(axis=1)
    if outside.any():
        first = np.flatnonzero(outside)[0]
        raise ConnectomeError(
            f"{int(outside.sum())} of {len(coords)} synapses lie outside the label volume of shape "
            f"{tuple(int(s) for s in shape)} (z, y, x), e.g. row {synapses.index[first]!r}: pre "
            f"{tuple(coords[first, :3].tolist())}, post {tuple(coords[first, 3:].tolist())}. "
            "Coordinates must be voxel indices into these labels: convert nm to voxels (divide "
            "by the voxel size) or subtract the volume's offset, or drop those rows.")
    return coords


def _check_neurons(neurons) -> pd.DataFrame | None:
    if neurons is None:
        return None
    if not isinstance(neurons, pd.DataFrame):
        raise ConnectomeError(f"neurons must be a DataFrame indexed by neuron id; got {type(neurons).__name__}.")
    if neurons.index.dtype.kind not in "iu":
        raise ConnectomeError(
            f"The neuron table's index must be the integer neuron ids; got dtype {neurons.index.dtype}. "
            "Use neurons.set_index('neuron_id') (or whichever column holds the ids).")
    if neurons.index.has_duplicates:
        dup = neurons.index[neurons.index.duplicated()][0]
        raise ConnectomeError(f"The neuron table lists some ids twice, e.g. {int(dup)}; give one row per neuron.")
    neurons = neurons.copy(deep=False)
    neurons.index = neurons.index.astype(np.int64)
    return neurons


def _report_exclusions(report, synapses, pre_id, post_id, background, autapse) -> None:
    report["background_pre"] = int((background & (pre_id == 0)).sum())
    report["background_post"] = int((background & (post_id == 0)).sum())
    report["autapses"] = int(autapse.sum())
    report["background_rows"] = synapses.index[background].to_numpy()
    report["autapse_rows"] = synapses.index[autapse].to_numpy()
    left_out = int(background.sum() + autapse.sum())
    report["counted"] = report["n_synapses"] - report["below_confidence"] - left_out
    if left_out:
        warnings.warn(
            f"{left_out} of {len(synapses)} synapses are not in the edges: {int(background.sum())} have "
            f"an end on background (label 0; {report['background_pre']} pre, {report['background_post']} "
            f"post) and {report['autapses']} have both ends in one neuron (autapses). Their rows are in "
            "cx.report['background_rows'] and cx.report['autapse_rows'].", ConnectomeWarning, stacklevel=3)


def _edge_counts(pre: np.ndarray, post: np.ndarray) -> pd.DataFrame:
    """Synapses per (pre, post), sorted by pre then post."""
    ids, at = np.unique(np.concatenate([pre, post]), return_inverse=True)
    n = max(len(ids), 1)
    # Ranks instead of raw ids keep the pair key inside int64 whatever the ids are.
    pair, count = np.unique(at[:len(pre)] * n + at[len(pre):], return_counts=True)
    return pd.DataFrame({"pre": ids[pair // n], "post": ids[pair % n], "syn_count": count.astype(np.int64)})


def _nt_votes(pre: np.ndarray, nt: pd.Series, counted: np.ndarray, mapping: dict) -> pd.DataFrame:
    """Majority NT of each presynaptic neuron and the fraction of its votes it got.

    Ties go to the alphabetically first name, so the result does not depend on row order.
    """
    codes, names = pd.factorize(nt)  # names are few: fold aliases on them, not on every row
    folded, kinds = pd.factorize(pd.Series(canonical_nt(np.asarray(names, dtype=object), mapping)), sort=True)
    codes = np.where(codes >= 0, folded[codes] if len(folded) else codes, -1)[counted]
    has = codes >= 0
    neurons, at = np.unique(pre[has], return_inverse=True)
    votes = np.zeros((len(neurons), max(len(kinds), 1)), np.int64)
    np.add.at(votes, (at, codes[has]), 1)
    best = votes.argmax(axis=1)
    agreement = votes[np.arange(len(neurons)), best] / np.maximum(votes.sum(axis=1), 1)
    return pd.DataFrame({"nt": np.asarray(kinds, dtype=object)[best] if len(kinds) else None,
                         "nt_agreement": agreement}, index=neurons)


def _neuron_table(stats, given, edges, votes, assigned_ids, mapping, mixed_below, report) -> pd.DataFrame:
    ids = assigned_ids[assigned_ids != 0]
    for more in (stats, given):
        if more is not None:
            ids = np.union1d(ids, more.index.to_numpy())
    index = pd.Index(np.unique(ids).astype(np.int64), name="neuron_id")
    table = pd.DataFrame(index=index)
    if stats is not None:
        stats = stats.reindex(index)
        table["size"] = stats["size"].fillna(0).astype(np.int64)
        for axis in "zyx":
            table[f"centroid_{axis}"] = stats[f"centroid_{axis}"]
        if given is not None:
            absent = given.index[~given.index.isin(stats.dropna().index)]
            report["neurons_not_in_labels"] = absent.to_numpy()
            if len(absent):
                warnings.warn(
                    f"{len(absent)} neurons of the given neuron table are not in the labels (e.g. "
                    f"{int(absent[0])}); they are kept with size 0. Were they merged or deleted?",
                    ConnectomeWarning, stacklevel=3)
    if given is not None and "type" in given.columns:
        table["type"] = given["type"].reindex(index)
    nt = np.full(len(index), None, dtype=object)
    agreement = np.full(len(index), np.nan)
    if votes is not None and len(votes):
        at = index.get_indexer(votes.index)
        nt[at], agreement[at] = votes["nt"].to_numpy(dtype=object), votes["nt_agreement"].to_numpy()
    if given is not None and "nt" in given.columns:
        earlier = canonical_nt(given["nt"].reindex(index).to_numpy(dtype=object), mapping)
        voted = pd.notna(nt)
        report["nt_changed"] = int((voted & pd.notna(earlier) & (earlier != nt)).sum())
        nt = np.where(voted, nt, earlier)  # no outgoing synapse: keep what the user knew
    table["nt"] = as_text(nt, index)
    table["nt_agreement"] = agreement
    table["mixed_nt"] = agreement < mixed_below  # NaN (no votes) compares False
    table["sign"] = nt_signs(nt, mapping, where=" of the neurons")
    report["unknown_nt"] = sorted({str(n) for n in pd.unique(nt[pd.notna(nt)]) if n not in mapping})
    at_pre, at_post = index.get_indexer(edges["pre"]), index.get_indexer(edges["post"])
    count = edges["syn_count"].to_numpy()
    n = len(index)
    table["in_degree"] = np.bincount(at_post, minlength=n).astype(np.int64)
    table["out_degree"] = np.bincount(at_pre, minlength=n).astype(np.int64)
    table["syn_in"] = np.bincount(at_post, weights=count, minlength=n).astype(np.int64)
    table["syn_out"] = np.bincount(at_pre, weights=count, minlength=n).astype(np.int64)
    if given is not None:
        own = [c for c in given.columns if c not in COMPUTED_NEURON_COLUMNS and c != "type"]
        table = table.join(given[own])
    return table
