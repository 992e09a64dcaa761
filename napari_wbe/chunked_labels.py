"""Connected components and label adjacency that work chunk by chunk (dask) and give the
same answer as a whole-volume computation.

Each chunk is labelled on its own; labels touching across chunk faces are joined with a
union-find over the face planes; ids are then numbered canonically (by the first voxel of
each component in C order), so a result does not depend on how the volume was chunked.
A numpy array is simply one chunk.
"""

from __future__ import annotations

import dask
import dask.array as da
import numba
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def as_dask(array) -> da.Array:
    return array if isinstance(array, da.Array) else da.from_array(np.asarray(array), chunks=-1)


def block_bounds(array):
    """(low, high) corners of every block of a dask array (one block for numpy), C order."""
    shape = array.shape
    chunks = array.chunks if isinstance(array, da.Array) else tuple((s,) for s in shape)
    starts = [np.cumsum((0,) + tuple(c[:-1])) for c in chunks]
    for index in np.ndindex(*[len(c) for c in chunks]):
        low = [int(starts[d][i]) for d, i in enumerate(index)]
        yield low, [low[d] + chunks[d][i] for d, i in enumerate(index)]


def _block_offsets(array: da.Array) -> tuple[int, list[np.ndarray]]:
    """Per-block label offsets that cannot collide: block number x largest block size."""
    largest = int(np.prod([max(c) for c in array.chunks]))
    starts = [np.cumsum((0,) + c[:-1]) for c in array.chunks]
    return largest, starts


def _local_labels(values: da.Array) -> da.Array:
    largest, _ = _block_offsets(values)
    numblocks = values.numblocks

    def label_block(block, block_info=None):
        number = np.ravel_multi_index(block_info[0]["chunk-location"], numblocks)
        return _label_runs(_as_3d(block), np.int64(number * largest)).reshape(block.shape)

    return values.map_blocks(label_block, dtype=np.int64)


def _as_3d(block: np.ndarray) -> np.ndarray:
    if block.ndim > 3:
        raise ValueError(f"Connected components work on up to 3 axes, not {block.ndim}.")
    return np.ascontiguousarray(block).reshape((1,) * (3 - block.ndim) + block.shape)


@numba.njit(cache=True, nogil=True)
def _root(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@numba.njit(cache=True, nogil=True)
def _label_runs(values, offset):
    """Face-connected regions of equal non-zero value, numbered offset + 1, 2, ... by their
    first voxel in C order (what skimage's label gives, plus that numbering)."""
    nz, ny, nx = values.shape
    out = np.zeros((nz, ny, nx), np.int64)
    parent = np.empty(nz * ny * nx + 1, np.int64)  # one provisional label per run at most
    n = 0
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                v = values[z, y, x]
                if v == 0:
                    continue
                if x > 0 and values[z, y, x - 1] == v:
                    here = out[z, y, x - 1]  # the run continues: its earlier neighbours are joined
                else:
                    n += 1
                    parent[n] = n
                    here = n
                for d in range(2):
                    if d == 0 and y > 0 and values[z, y - 1, x] == v:
                        other = out[z, y - 1, x]
                    elif d == 1 and z > 0 and values[z - 1, y, x] == v:
                        other = out[z - 1, y, x]
                    else:
                        continue
                    a, b = _root(parent, here), _root(parent, other)
                    if a != b:  # the older label is the root: roots keep first-voxel order
                        parent[max(a, b)] = min(a, b)
                out[z, y, x] = here
    final, count = np.zeros(n + 1, np.int64), 0
    for i in range(1, n + 1):  # a root comes before its members: numbered in scan order
        r = _root(parent, i)
        count += r == i
        final[i] = count if r == i else final[r]
    flat = out.ravel()
    for i in range(flat.size):
        if flat[i]:
            flat[i] = final[flat[i]] + offset
    return out


@numba.njit(cache=True, nogil=True)
def _scan_stats(local, values, weights, offset):
    """Size, value, first voxel (flat, C order) and float64 weight sum of the labels
    offset + 1, 2, ... of a block labelled by `_label_runs`, in one pass."""
    flat, flat_values, flat_weights = local.ravel(), values.ravel(), weights.ravel()
    top = 0
    for i in range(flat.size):
        top = max(top, flat[i] - offset)
    sizes, first = np.zeros(top + 1, np.int64), np.full(top + 1, -1, np.int64)
    value, sums = np.zeros(top + 1, flat_values.dtype), np.zeros(top + 1, np.float64)
    for i in range(flat.size):
        j = flat[i] - offset
        if flat[i] == 0:
            continue
        if sizes[j] == 0:
            first[j], value[j] = i, flat_values[i]
        sizes[j] += 1
        sums[j] += flat_weights[i]
    return sizes[1:], value[1:], first[1:], sums[1:]


def _block_stats(local: np.ndarray, values: np.ndarray, origin: tuple[int, ...], shape: tuple[int, ...]):
    """label, size, value and first global (C-order) voxel index of each label in a block."""
    flat = local.ravel()
    order = np.argsort(flat, kind="stable")  # stable: the first occurrence is the lowest index
    sorted_labels = flat[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    labels = sorted_labels[starts]
    sizes = np.diff(np.r_[starts, len(flat)])
    first_local = order[starts]
    coords = np.unravel_index(first_local, local.shape)
    first_global = np.ravel_multi_index(tuple(c + o for c, o in zip(coords, origin)), shape)
    value = values.ravel()[first_local]
    keep = labels != 0
    return labels[keep], sizes[keep], value[keep], first_global[keep]


def _face_pairs(local: da.Array, values: da.Array, same_value: bool) -> list:
    """Delayed (a, b) label pairs that touch across every chunk face."""
    tasks = []
    for axis, chunks in enumerate(local.chunks):
        for boundary in np.cumsum(chunks)[:-1]:
            index = [slice(None)] * local.ndim
            index[axis] = slice(boundary - 1, boundary + 1)
            tasks.append(dask.delayed(_pairs_across)(local[tuple(index)], values[tuple(index)], axis, same_value))
    return tasks


def _pairs_across(local, values, axis, same_value: bool) -> np.ndarray:
    a, b = np.take(local, 0, axis=axis).ravel(), np.take(local, 1, axis=axis).ravel()
    touch = (a != 0) & (b != 0) & (a != b)
    if same_value:
        touch &= np.take(values, 0, axis=axis).ravel() == np.take(values, 1, axis=axis).ravel()
    return np.stack([a[touch], b[touch]], axis=1)


def _stats_tasks(local: da.Array, values: da.Array) -> list:
    _, starts = _block_offsets(local)
    tasks = []
    for index in np.ndindex(*local.numblocks):
        origin = tuple(int(starts[d][i]) for d, i in enumerate(index))
        tasks.append(dask.delayed(_block_stats)(local.blocks[index], values.blocks[index], origin, local.shape))
    return tasks


def _described_blocks(local: da.Array, values: da.Array, weights=None) -> list:
    """Per block (C order): `_describe_block`, each block read once."""
    largest, starts = _block_offsets(local)
    tasks = []
    for number, index in enumerate(np.ndindex(*local.numblocks)):
        origin = tuple(int(starts[d][i]) for d, i in enumerate(index))
        weight = None if weights is None else weights.blocks[index]
        tasks.append(dask.delayed(_describe_block)(local.blocks[index], values.blocks[index], weight, origin,
                                                   local.shape, number * largest))
    return tasks


def _describe_block(local, values, weights, origin, shape, offset):
    """`_block_stats` of a block labelled by `_label_runs` (+ weight sums), and its faces."""
    faces = [(np.take(local, [0, -1], axis=axis), np.take(values, [0, -1], axis=axis)) for axis in range(local.ndim)]
    weighted = values if weights is None else weights
    sizes, value, first_local, sums = _scan_stats(_as_3d(local), _as_3d(values), _as_3d(weighted), np.int64(offset))
    coords = np.unravel_index(first_local, local.shape)
    first_global = np.ravel_multi_index(tuple(c + o for c, o in zip(coords, origin)), shape)
    stats = (np.arange(1, len(sizes) + 1, dtype=np.int64) + offset, sizes, value, first_global)
    return stats + ((sums,) if weights is not None else ()), faces


def _pairs_between_blocks(numblocks: tuple[int, ...], faces: list) -> list:
    """Touching labels of equal value across the faces between neighbouring blocks."""
    pairs = []
    for number, index in enumerate(np.ndindex(*numblocks)):
        for axis in [a for a in range(len(numblocks)) if index[a] + 1 < numblocks[a]]:
            after = int(np.ravel_multi_index(index[:axis] + (index[axis] + 1,) + index[axis + 1:], numblocks))
            (mine, mine_values), (other, other_values) = faces[number][axis], faces[after][axis]
            a, b = np.take(mine, 1, axis=axis).ravel(), np.take(other, 0, axis=axis).ravel()
            same = np.take(mine_values, 1, axis=axis).ravel() == np.take(other_values, 0, axis=axis).ravel()
            touch = (a != 0) & (b != 0) & same
            pairs.append(np.stack([a[touch], b[touch]], axis=1))
    return pairs


def _union(labels: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Component number of each label (labels sorted and unique) given touching pairs."""
    if len(pairs) == 0:
        return np.arange(len(labels))
    a, b = np.searchsorted(labels, pairs[:, 0]), np.searchsorted(labels, pairs[:, 1])
    graph = coo_matrix((np.ones(len(a), bool), (a, b)), shape=(len(labels), len(labels)))
    return connected_components(graph, directed=False)[1]


def label_equal_values(values, min_size: int = 1, persist=None, progress=None, weights=None, output="labels"):
    """Connected regions (face-connected) of equal non-zero value, each a label.

    Returns (labels, table): labels numbered 1..N by the first voxel of each region in C
    order (uint32, or uint64 if needed; numpy in, numpy out), and a table with one row per
    label: label, size, value (the region's value), first_index, and with `weights` (an
    array like `values`) weight_sum, the sum of the weights over the region. Regions
    smaller than `min_size` voxels become 0. output="values" gives each kept region's
    value instead of its label. `persist(array) -> array` may store the intermediate local
    labels (e.g. to a temporary zarr) so big volumes are not held in memory.
    """
    was_numpy = not isinstance(values, da.Array)
    values = as_dask(values)
    local = _local_labels(values)
    local = persist(local) if persist is not None else local.persist()
    weights = None if weights is None else as_dask(weights).rechunk(values.chunks)
    found = dask.compute(_described_blocks(local, values, weights))[0]
    stats, pairs = [f[0] for f in found], _pairs_between_blocks(local.numblocks, [f[1] for f in found])
    if progress:
        progress(1, 2)
    mapping, table = _components(stats, pairs, min_size)
    if output == "values":
        labels = _relabel_runs(local, mapping["local"].to_numpy(), mapping["value"].to_numpy(), values.dtype)
    else:
        labels = _relabel_runs(local, mapping["local"].to_numpy(), mapping["label"].to_numpy())
    if progress:
        progress(2, 2)
    return (labels.compute() if was_numpy else labels), table


def _relabel_runs(local: da.Array, keys: np.ndarray, new_values: np.ndarray, dtype=None) -> da.Array:
    """`relabel` for labels made by `_local_labels`: a table per block, one look-up per voxel."""
    largest, _ = _block_offsets(local)
    numblocks = local.numblocks
    if dtype is None:
        dtype = np.uint32 if (new_values.max() if len(new_values) else 0) < 2**32 else np.uint64
    block_of = (keys - 1) // largest  # block b holds b * largest + 1 .. (b + 1) * largest
    tables = {}
    for number in np.unique(block_of):
        inside = block_of == number
        table = np.zeros(int((keys[inside] - number * largest).max()) + 1, dtype)
        table[keys[inside] - number * largest] = new_values[inside]
        tables[int(number)] = table

    def apply(block, block_info=None):
        number = int(np.ravel_multi_index(block_info[0]["chunk-location"], numblocks))
        table = tables.get(number, np.zeros(1, dtype))
        return _look_up(_as_3d(block), np.int64(number * largest), table).reshape(block.shape)

    return local.map_blocks(apply, dtype=dtype)


@numba.njit(cache=True, nogil=True)
def _look_up(local, offset, table):
    out = np.zeros(local.shape, table.dtype)
    for z in range(local.shape[0]):
        for y in range(local.shape[1]):
            for x in range(local.shape[2]):
                j = local[z, y, x] - offset
                if 0 < j < len(table):
                    out[z, y, x] = table[j]
    return out


def _components(stats: list, pairs: list, min_size: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(local label -> final label, value) for kept components, and one row per final label."""
    columns = ("local", "size", "value", "first_index", "weight_sum")[:len(stats[0])]
    local = pd.DataFrame({c: np.concatenate([s[i] for s in stats]) for i, c in enumerate(columns)})
    local = local.sort_values("local", kind="stable").reset_index(drop=True)
    all_pairs = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
    local["component"] = _union(local["local"].to_numpy(), all_pairs)
    sums = {"weight_sum": ("weight_sum", "sum")} if "weight_sum" in local else {}
    table = local.groupby("component").agg(size=("size", "sum"), value=("value", "first"),
                                           first_index=("first_index", "min"), **sums)
    table = table[table["size"] >= min_size].sort_values("first_index", kind="stable")
    table.insert(0, "label", np.arange(1, len(table) + 1, dtype=np.int64))
    local["label"] = local["component"].map(table["label"]).fillna(0).astype(np.int64)
    return local.loc[local["label"] > 0, ["local", "label", "value"]], table.reset_index(drop=True)


def join_by_value(labels, table: pd.DataFrame, values) -> tuple[object, pd.DataFrame]:
    """The regions (from `label_equal_values`) whose value is in `values` become one label
    per value; the rest stay as they are. Same table columns plus n_pieces, renumbered 1..N
    by first voxel, so the result stays independent of the chunking."""
    joined = table["value"].isin(np.asarray(values))
    group = np.where(joined, -table["value"].to_numpy(np.int64), table["label"].to_numpy(np.int64))
    sums = {"weight_sum": ("weight_sum", "sum")} if "weight_sum" in table else {}
    merged = table.assign(group=group).groupby("group").agg(
        size=("size", "sum"), value=("value", "first"), first_index=("first_index", "min"),
        n_pieces=("label", "size"), **sums)
    merged = merged.sort_values("first_index", kind="stable")
    merged.insert(0, "label", np.arange(1, len(merged) + 1, dtype=np.int64))
    new = pd.Series(group).map(merged["label"]).to_numpy(np.int64)
    old = table["label"].to_numpy(np.int64)
    order = np.argsort(old)
    return relabel(labels, old[order], new[order]), merged.reset_index(drop=True)


def relabel(labels, keys: np.ndarray, new_values: np.ndarray, dtype=None):
    """Map labels through keys -> new_values (keys sorted); anything else becomes 0."""
    keys = np.asarray(keys, dtype=np.int64)
    new_values = np.asarray(new_values)
    if dtype is None:
        top = int(new_values.max()) if len(new_values) else 0
        dtype = np.uint32 if top < 2**32 else np.uint64

    def apply(block):
        if len(keys) == 0:
            return np.zeros(block.shape, dtype)
        pos = np.clip(np.searchsorted(keys, block), 0, len(keys) - 1)
        return np.where(keys[pos] == block, new_values[pos], 0).astype(dtype)

    if isinstance(labels, da.Array):
        return labels.map_blocks(apply, dtype=dtype)
    return apply(np.asarray(labels))


def touching_pairs(labels) -> np.ndarray:
    """Unique (a, b) pairs, a < b, of different non-zero labels that share a voxel face."""
    labels = as_dask(labels)
    inside = [dask.delayed(_pairs_within)(block) for block in labels.to_delayed().ravel()]
    across = _face_pairs(labels, labels, False)
    found = dask.compute(inside + across)[0]
    pairs = np.concatenate(found) if found else np.zeros((0, 2), np.int64)
    pairs = np.sort(pairs, axis=1)
    return np.unique(pairs, axis=0) if len(pairs) else pairs.reshape(0, 2)


def _pairs_within(block: np.ndarray) -> np.ndarray:
    found = []
    for axis in range(block.ndim):
        a = np.take(block, np.arange(block.shape[axis] - 1), axis=axis).ravel()
        b = np.take(block, np.arange(1, block.shape[axis]), axis=axis).ravel()
        touch = (a != 0) & (b != 0) & (a != b)
        found.append(np.stack([a[touch], b[touch]], axis=1))
    return np.concatenate(found).astype(np.int64)


def first_voxel_index(labels) -> pd.Series:
    """The first (C-order) voxel index of each non-zero label: a chunking-proof order."""
    labels = as_dask(labels)
    stats = dask.compute(_stats_tasks(labels, labels))[0]
    table = pd.DataFrame({"label": np.concatenate([s[0] for s in stats]),
                          "first_index": np.concatenate([s[3] for s in stats])})
    return table.groupby("label")["first_index"].min()


def label_means(labels, values, label_ids: np.ndarray) -> np.ndarray:
    """Mean of `values` over each label in `label_ids` (0 where a label has no voxel)."""
    sums = _sums_by_label(labels, values, with_counts=True).reindex(np.asarray(label_ids), fill_value=0)
    return (sums["sum"] / sums["count"].where(sums["count"] > 0, 1)).to_numpy()


def _sums_by_label(labels, values, with_counts: bool = False):
    """Float64 sums of `values` (and voxel counts) per non-zero label, chunk by chunk."""
    labels, values = as_dask(labels), as_dask(values)
    tasks = [dask.delayed(_block_sums)(lb, vb) for lb, vb in zip(labels.to_delayed().ravel(),
                                                                  values.rechunk(labels.chunks).to_delayed().ravel())]
    found = dask.compute(tasks)[0]
    ids = np.concatenate([f[0] for f in found]) if found else np.zeros(0, np.int64)
    sums = pd.DataFrame({"label": ids, "sum": np.concatenate([f[1] for f in found]),
                         "count": np.concatenate([f[2] for f in found])}).groupby("label").sum()
    return sums if with_counts else sums["sum"]


def _block_sums(labels: np.ndarray, values: np.ndarray):
    flat = labels.ravel()
    if flat.size and flat.dtype.kind in "ui" and 0 <= flat.min() and flat.max() <= 4 * flat.size:  # dense ids
        counts = np.bincount(flat, minlength=1)
        ids = np.flatnonzero(counts)
        sums = np.bincount(flat, weights=values.ravel().astype(np.float64), minlength=1)[ids]
        counts = counts[ids]
    else:
        ids, inverse = np.unique(flat, return_inverse=True)
        sums = np.bincount(inverse, weights=values.ravel().astype(np.float64), minlength=len(ids))
        counts = np.bincount(inverse, minlength=len(ids))
    keep = ids != 0
    return ids[keep].astype(np.int64), sums[keep], counts[keep]
