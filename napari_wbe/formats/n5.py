"""N5 containers (Saalfeld lab; BigDataViewer, Paintera, CellMap), read through tensorstore.

N5 lists dimensions fastest-first (x, y, z); we present them reversed, as z, y, x.
A group with datasets s0, s1, ... and `downsamplingFactors` is a multiscale pyramid.
"""

from __future__ import annotations

import json
import os

import numpy as np
import tensorstore as ts

from .common import (
    RawVolume,
    VolumeError,
    choose_message,
    default_axes,
    lazy,
    looks_like_labels,
    voxel_size_from_attrs,
)


def is_n5(path: str) -> bool:
    return path.rstrip("/").endswith(".n5") or _has_n5_root(path)


def _has_n5_root(path: str) -> bool:
    attrs = _attrs(path)
    return "n5" in attrs or "dimensions" in attrs


def _attrs(folder: str) -> dict:
    try:
        with open(os.path.join(folder, "attributes.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as err:
        raise VolumeError(f"{folder}/attributes.json is not valid JSON ({err}); the N5 metadata is damaged.") from err


def _is_array(folder: str) -> bool:
    return "dimensions" in _attrs(folder)


def _scale_levels(folder: str) -> list[str]:
    levels = []
    while os.path.isdir(os.path.join(folder, f"s{len(levels)}")) and _is_array(os.path.join(folder, f"s{len(levels)}")):
        levels.append(f"s{len(levels)}")
    return levels


def list_datasets(path: str) -> list[dict]:
    found = []
    for folder, subdirs, _ in os.walk(path):
        key = os.path.relpath(folder, path).replace(os.sep, "/")
        key = "" if key == "." else key
        levels = _scale_levels(folder)
        if levels:
            found.append(_describe(key, os.path.join(folder, levels[0]), multiscale=True))
            subdirs.clear()
        elif _is_array(folder):
            found.append(_describe(key, folder, multiscale=False))
            subdirs.clear()  # chunk folders, not datasets
        else:
            subdirs.sort()
    return [f for f in found if len(f["shape"]) >= 2]


def _describe(key: str, folder: str, multiscale: bool) -> dict:
    attrs = _attrs(folder)
    return {"name": key, "shape": tuple(attrs["dimensions"][::-1]), "dtype": attrs["dataType"], "multiscale": multiscale}


class _ReversedN5Array:
    """A tensorstore N5 array seen in z, y, x order, with the numpy protocol dask needs."""

    def __init__(self, folder: str):
        try:
            store = ts.open({"driver": "n5", "kvstore": {"driver": "file", "path": folder}, "open": True},
                            read=True).result()
        except Exception as err:
            raise VolumeError(f"{folder} is not a readable N5 dataset ({err}).") from err
        self._store = store.T
        self.shape = tuple(int(s) for s in self._store.shape)
        self.dtype = np.dtype(self._store.dtype.numpy_dtype)
        self.ndim = len(self.shape)
        self.chunks = tuple(int(c) for c in self._store.chunk_layout.read_chunk.shape)

    def __getitem__(self, index):
        return self._store[index].read().result()


def read_n5(path: str, dataset: str | None = None) -> RawVolume:
    if dataset is None:
        candidates = list_datasets(path)
        if len(candidates) != 1:
            raise VolumeError(choose_message(path, candidates))
        dataset = candidates[0]["name"]
    folder = os.path.join(path, dataset) if dataset else path
    if not os.path.isdir(folder):
        raise VolumeError(f"{path} has no dataset {dataset!r}; it has {[c['name'] for c in list_datasets(path)]}.")
    levels = _scale_levels(folder) or [""]
    arrays = [_ReversedN5Array(os.path.join(folder, lvl)) for lvl in levels]
    data = [lazy(a, os.path.join(folder, lvl)) for a, lvl in zip(arrays, levels)]
    attrs = {**_attrs(path), **_attrs(folder), **_attrs(os.path.join(folder, levels[0]))}
    spatial = min(arrays[0].ndim, 3)
    voxel_size = voxel_size_from_attrs(attrs, spatial, xyz_order=True)
    kind = "labels" if looks_like_labels(dataset or os.path.basename(path), arrays[0].dtype) else None
    return RawVolume(data, default_axes(arrays[0].ndim, folder), voxel_size, kind, {"format": "n5", "dataset": dataset})
