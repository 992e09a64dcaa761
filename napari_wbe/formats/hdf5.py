"""HDF5 volumes: CREMI (`volumes/raw`, `volumes/labels/neuron_ids` with `resolution`),
Janelia FlyEM `stack` files (with an optional `transforms` supervoxel -> body table),
and ilastik/gala-style single datasets, LZF-compressed ones included.
"""

from __future__ import annotations

import dask.array as da
import h5py
import numpy as np

from .common import (
    RawVolume,
    VolumeError,
    choose_message,
    default_axes,
    lazy,
    looks_like_labels,
    voxel_size_from_attrs,
)


def _open(path: str) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise VolumeError(
            f"{path} is not a readable HDF5 file ({err}). If it ends in .gz, gunzip it first."
        ) from err


def list_datasets(path: str) -> list[dict]:
    """Datasets of 2+ dims that look like volumes (a `transforms` table is not one)."""
    found = []
    with _open(path) as f:

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.ndim >= 2 and not _is_lookup_table(name, obj):
                found.append({"name": name, "shape": obj.shape, "dtype": str(obj.dtype), "multiscale": False})

        f.visititems(visit)
    return found


def _is_lookup_table(name: str, dataset) -> bool:
    return dataset.ndim == 2 and dataset.shape[1] == 2 and name.split("/")[-1] == "transforms"


def read_hdf5(path: str, dataset: str | None = None, apply_transforms: bool = True) -> RawVolume:
    candidates = list_datasets(path)
    if dataset is None:
        if len(candidates) != 1:
            raise VolumeError(choose_message(path, candidates))
        dataset = candidates[0]["name"]
    f = _open(path)  # stays open while the lazy array (which holds the dataset) lives
    if dataset not in f or not isinstance(f[dataset], h5py.Dataset):
        names = [c["name"] for c in candidates]
        f.close()
        raise VolumeError(f"{path} has no dataset {dataset!r}; it has {names}.")
    ds = f[dataset]
    source = f"{path}:{dataset}"
    chunks = ds.chunks or _slab_chunks(ds.shape)
    # h5py is not thread-safe: dask must serialise reads of one file.
    array = lazy(ds, source, chunks=chunks, lock=True)
    attrs = {**dict(f.attrs), **dict(ds.attrs)}
    kind = "labels" if looks_like_labels(dataset, ds.dtype) else None
    metadata = {"format": "hdf5", "dataset": dataset}
    parent = ds.parent
    if "transforms" in parent and _is_lookup_table("transforms", parent["transforms"]):
        table = parent["transforms"][()]
        metadata["transforms"] = "applied" if apply_transforms else "available"
        if apply_transforms:
            array = map_ids(array, table)
            kind = "labels"
    if "offset" in ds.attrs:
        metadata["translation"] = tuple(float(v) for v in np.ravel(ds.attrs["offset"]))
    spatial = min(ds.ndim, 3)
    return RawVolume([array], default_axes(ds.ndim, source), voxel_size_from_attrs(attrs, spatial), kind, metadata)


def _slab_chunks(shape):
    """Contiguous datasets read best in whole z-slabs (one slice is one seek)."""
    return (1,) * (len(shape) - 2) + tuple(shape[-2:])


def map_ids(array: da.Array, table: np.ndarray) -> da.Array:
    """Relabel lazily through a (from, to) table; ids missing from the table stay as they are.

    FlyEM `transforms` map supervoxels to proofread bodies.
    """
    table = np.asarray(table)
    order = np.argsort(table[:, 0])
    keys, values = table[order, 0], table[order, 1]
    out_dtype = np.result_type(array.dtype, values.dtype)
    if out_dtype.kind == "f":  # int32 stack + uint64 table promote to float: ids must stay integers
        out_dtype = np.dtype(np.int64 if values.max(initial=0) <= np.iinfo(np.int64).max else np.uint64)
        values = values.astype(out_dtype)

    def relabel(block):
        pos = np.clip(np.searchsorted(keys, block), 0, len(keys) - 1)
        hit = keys[pos] == block
        return np.where(hit, values[pos], block).astype(out_dtype, copy=False)

    return array.map_blocks(relabel, dtype=out_dtype)
