"""Segmentation error metrics against a ground truth, all from one sparse contingency table.

    m = metrics(labels, truth)
    m["vi_split"], m["vi_merge"], m["vi"], m["arand"], m["false_merges"], ...

Conventions (checked against scikit-image 0.26, see tests/test_proofreading_metrics.py):
- `vi_split` = H(labels | truth): over-segmentation, the test splits truth bodies.
  It is `variation_of_information(truth, labels, ignore_labels=(0,))[0]`.
- `vi_merge` = H(truth | labels): under-segmentation, one test segment holds several
  bodies. It is `variation_of_information(truth, labels, ignore_labels=(0,))[1]`.
  Entropies in bits (log2), as scikit-image.
- `arand` equals `skimage.metrics.adapted_rand_error(truth, labels)[0]` (SNEMI3D).
- `precision` = pairs of voxels together in both / pairs together in `labels`: it drops
  when segments merge bodies. `recall` = pairs together in both / pairs together in
  `truth`: it drops when bodies are split. scikit-image 0.26 returns these two the other
  way round (its `precision` divides by the truth's pairs; scikit-image issue #6485),
  so here `precision == adapted_rand_error(truth, labels)[2]` and vice versa.
- Voxels where truth == 0 are left out (`ignore_background=True`), as scikit-image does
  with ignore_labels=(0,). A 0 in `labels` is scored like any other segment (again as
  scikit-image does), but `n_segments` counts non-zero labels only.

The table is built chunk by chunk for dask arrays (counts add up), so the metrics of a
volume larger than memory cost one pass over it.
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pandas as pd

# Ids up to this value are compacted with a lookup table (one bincount, no sort).
_LOOKUP_LIMIT = 1 << 24
# A dense (truth x label) count array up to this size beats sorting the voxel pairs.
_DENSE_LIMIT = 1 << 25


def contingency(labels, truth) -> pd.DataFrame:
    """One row per (truth, label) pair that shares voxels: columns truth, label, count.

    Sorted by (truth, label). Accepts numpy or dask arrays of the same shape; a dask
    volume is counted block by block and the counts summed.
    """
    if np.shape(labels) != np.shape(truth):
        raise ValueError(f"labels {np.shape(labels)} and truth {np.shape(truth)} must have the same shape; "
                         "crop or resample one of them to the other's grid.")
    for name, array in (("labels", labels), ("truth", truth)):
        if np.dtype(array.dtype).kind not in "iub":
            raise ValueError(f"{name} must hold integer ids, not {array.dtype}; convert with .astype('uint32').")
    if isinstance(labels, da.Array) or isinstance(truth, da.Array):
        labels = labels if isinstance(labels, da.Array) else da.from_array(np.asarray(labels), chunks="auto")
        truth = da.asarray(truth).rechunk(labels.chunks)
        tasks = [dask.delayed(_block_table)(lb, tb) for lb, tb in
                 zip(labels.to_delayed().ravel(), truth.to_delayed().ravel())]
        parts = dask.compute(tasks)[0]
        table = pd.concat(parts, ignore_index=True).groupby(["truth", "label"], sort=True)["count"].sum()
        return table.reset_index()
    return _block_table(np.asarray(labels), np.asarray(truth))


def _block_table(labels: np.ndarray, truth: np.ndarray) -> pd.DataFrame:
    t_ids, key = compact_ids(truth.ravel())
    l_ids, l_index = compact_ids(labels.ravel())
    n_l = len(l_ids)
    n_keys = len(t_ids) * n_l
    if n_keys > np.iinfo(key.dtype).max:
        key = key.astype(np.int64)
    key *= n_l  # in place: on a 250^3 volume every temporary is 60-120 MB of page faults
    key += l_index
    del l_index
    if n_keys <= _DENSE_LIMIT:
        counts = np.bincount(key, minlength=n_keys)
        keys = np.flatnonzero(counts)
        counts = counts[keys]
    else:
        key.sort()
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        counts = np.diff(np.r_[starts, len(key)])
        keys = key[starts]
    return pd.DataFrame({"truth": t_ids[keys // n_l], "label": l_ids[keys % n_l], "count": counts.astype(np.int64)})


def compact_ids(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct ids as int64, index of each voxel's id among them: int32 when the
    ids are few, to halve the memory traffic)."""
    if values.dtype == bool:  # a bool array would index as a mask, not by value
        values = values.view(np.uint8)
    if values.size and values.min() >= 0 and values.max() < _LOOKUP_LIMIT:
        present = np.bincount(values) > 0  # one linear pass, no sort
        ids = np.flatnonzero(present)
        lookup = np.zeros(len(present), np.int32)
        lookup[ids] = np.arange(len(ids))
        return ids.astype(np.int64), lookup[values]
    ids, index = np.unique(values, return_inverse=True)
    return ids.astype(np.int64), index.ravel().astype(np.int64)


def metrics(labels, truth, ignore_background: bool = True, min_overlap: int = 100,
            min_fraction: float = 0.1, table: pd.DataFrame | None = None) -> dict:
    """VI (split, merge, total), adapted Rand error, Rand precision/recall, and counts of
    false merges and false splits of `labels` (the segmentation under test) against `truth`.

    See the module docstring for which number is which. Counting rules:
    - a test segment is a false merge when at least two truth bodies each put a
      substantial piece in it: at least `min_overlap` voxels AND at least `min_fraction`
      of that body (so a body grazing the segment along a misplaced border does not count);
    - a truth body is a false split when at least two test segments each hold a
      substantial piece of it: at least `min_overlap` voxels AND at least `min_fraction`
      of that segment (so a segment whose border spills into the body does not count).
    `table`: a precomputed `contingency(labels, truth)` to reuse (the arrays are then ignored).
    """
    table = contingency(labels, truth) if table is None else table
    if ignore_background:
        table = table[table["truth"] != 0]
    n = table["count"].to_numpy(np.float64)
    truth_ids, t_index = np.unique(table["truth"].to_numpy(), return_inverse=True)
    label_ids, l_index = np.unique(table["label"].to_numpy(), return_inverse=True)
    body_size = np.bincount(t_index, weights=n, minlength=len(truth_ids))
    segment_size = np.bincount(l_index, weights=n, minlength=len(label_ids))
    total = n.sum()
    result = _information(n, body_size[t_index], segment_size[l_index], total)
    result |= _rand(n, body_size, segment_size, total)
    substantial = n >= min_overlap
    in_segment = substantial & (n >= min_fraction * body_size[t_index])
    in_body = substantial & (n >= min_fraction * segment_size[l_index])
    result["false_merges"] = int((np.bincount(l_index[in_segment], minlength=len(label_ids)) >= 2).sum())
    result["false_splits"] = int((np.bincount(t_index[in_body], minlength=len(truth_ids)) >= 2).sum())
    result["n_segments"] = int(np.count_nonzero(label_ids))
    result["n_bodies"] = int(np.count_nonzero(truth_ids))
    return result


def _information(n, body_of_pair, segment_of_pair, total) -> dict:
    """Conditional entropies in bits: sum over pairs of p_ij log2(p_i / p_ij) etc."""
    if total == 0:
        return {"vi_split": 0.0, "vi_merge": 0.0, "vi": 0.0}
    p = n / total
    split = float(np.sum(p * np.log2(body_of_pair / n)))  # H(labels | truth)
    merge = float(np.sum(p * np.log2(segment_of_pair / n)))  # H(truth | labels)
    return {"vi_split": split, "vi_merge": merge, "vi": split + merge}


def _rand(n, body_size, segment_size, total) -> dict:
    """Adapted Rand error over voxel pairs (each unordered pair counted twice, as skimage)."""
    together_both = float(n @ n - total)
    together_truth = float(body_size @ body_size - total)
    together_labels = float(segment_size @ segment_size - total)
    # With no pair of voxels to compare there is nothing wrong: precision, recall = 1.
    precision = together_both / together_labels if together_labels > 0 else 1.0
    recall = together_both / together_truth if together_truth > 0 else 1.0
    denominator = 0.5 * (together_truth + together_labels)
    arand = 1.0 - together_both / denominator if denominator > 0 else 0.0
    return {"arand": arand, "precision": precision, "recall": recall}
