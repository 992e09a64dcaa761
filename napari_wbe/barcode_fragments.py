"""Barcode-guided agglomeration: give each fragment of an over-segmentation the code its
voxels vote for, then join touching fragments that carry the same code.

Averaging a whole fragment's tag intensities beats any single voxel's noise, which is
why fragments plus barcodes make tracing cheap.
"""

from __future__ import annotations

import tempfile

import dask
import dask.array as da
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .barcode_decoding import DecodeSettings, nearest_code, prepare
from .chunked_halo import map_with_halo
from .chunked_labels import as_dask, first_voxel_index, relabel, touching_pairs


def agglomerate(stack: da.Array, fragments, settings: DecodeSettings, book, stages):
    fragments = as_dask(fragments)
    if fragments.shape != stack.shape[1:]:
        raise ValueError(f"fragments have shape {fragments.shape} but the channels are {stack.shape[1:]}.")
    if np.dtype(fragments.dtype).kind not in "iu":
        raise ValueError(f"fragments must be integer labels, not {fragments.dtype}.")
    stack = stack.rechunk((stack.shape[0],) + fragments.chunks)
    means, sizes, ids = _fragment_means(stack, fragments, settings)
    stages.done(3)
    # As for voxels: the code of the nearest direction (cosine), if the fragment is bright
    # enough to carry one. (A plain dot product with the unit centroid mixed the two up: a
    # dim cell's fragments fell below the similarity however well they matched.)
    index, similarity = nearest_code(means.T[:, :, None, None], settings.centroids, cosine=True)
    index, similarity = index.ravel(), similarity.ravel()
    bright = means.max(axis=1) > settings.foreground_threshold
    code = np.where((similarity >= settings.min_similarity) & bright, index + 1, 0)
    pairs = touching_pairs(fragments)
    stages.done(4)
    groups = _join_same_code(ids, code, pairs)
    first = first_voxel_index(fragments).reindex(ids).to_numpy()
    table = pd.DataFrame({"fragment": ids, "group": groups, "size": sizes, "value": code,
                          "first_index": first, "weighted": similarity * sizes})
    merged = table.groupby("group").agg(size=("size", "sum"), value=("value", "first"),
                                        first_index=("first_index", "min"), weighted=("weighted", "sum"))
    merged = merged.sort_values("first_index", kind="stable")
    merged["label"] = np.arange(1, len(merged) + 1, dtype=np.int64)
    merged["mean_confidence"] = merged["weighted"] / merged["size"]
    label_of_fragment = table["group"].map(merged["label"]).to_numpy()
    labels = relabel(fragments, ids, label_of_fragment)
    stages.done(5)
    return labels, merged.reset_index(drop=True)[["label", "size", "value", "first_index", "mean_confidence"]]


def _fragment_means(stack: da.Array, fragments: da.Array, settings: DecodeSettings):
    """Mean normalised tag vector, size and id of every fragment (chunk-wise sums)."""
    halo = settings.smoothing_radius()
    with tempfile.TemporaryDirectory(prefix="wbe-fragments-") as scratch:  # blocks' margins, when > 1 block
        prepared = map_with_halo(prepare, stack, halo, stack.shape[0], settings=settings, scratch=scratch)
        tasks = [dask.delayed(_block_sums)(f, x) for f, x in zip(fragments.to_delayed().ravel(),
                                                                prepared.to_delayed().ravel())]
        found = dask.compute(tasks)[0]
    ids = np.concatenate([f[0] for f in found])
    sums = pd.DataFrame(np.concatenate([f[1] for f in found]), index=ids).groupby(level=0).sum()
    counts = pd.Series(np.concatenate([f[2] for f in found]), index=ids).groupby(level=0).sum()
    means = sums.to_numpy() / counts.to_numpy()[:, None]
    return means.astype(np.float32), counts.to_numpy(), sums.index.to_numpy().astype(np.int64)


def _block_sums(fragments: np.ndarray, x: np.ndarray):
    ids, inverse = np.unique(fragments.ravel(), return_inverse=True)
    sums = np.stack([np.bincount(inverse, weights=x[c].ravel(), minlength=len(ids)) for c in range(x.shape[0])],
                    axis=1)
    counts = np.bincount(inverse, minlength=len(ids))
    keep = ids != 0
    return ids[keep], sums[keep], counts[keep]


def _join_same_code(ids: np.ndarray, code: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Group number per fragment: touching fragments with the same (non-zero) code join."""
    position = pd.Series(np.arange(len(ids)), index=ids)
    if len(pairs):
        a, b = position.reindex(pairs[:, 0]).to_numpy(), position.reindex(pairs[:, 1]).to_numpy()
        same = (code[a] == code[b]) & (code[a] > 0)
        a, b = a[same], b[same]
    else:
        a = b = np.zeros(0, int)
    graph = coo_matrix((np.ones(len(a), bool), (a, b)), shape=(len(ids), len(ids)))
    return connected_components(graph, directed=False)[1]
