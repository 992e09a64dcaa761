"""Zarr v2 and v3 arrays and groups, including OME-Zarr images and their `labels/`."""

from __future__ import annotations

import os

import zarr

from .common import (
    RawVolume,
    VolumeError,
    choose_message,
    default_axes,
    lazy,
    looks_like_labels,
    voxel_size_from_attrs,
)
from .ngff import label_names, ome_attrs, parse_multiscale


def open_node(path: str):
    try:
        return zarr.open(path, mode="r")
    except Exception as err:
        raise VolumeError(
            f"{path} is not a readable zarr array or group ({err}). Check that the folder "
            "holds .zarray/.zgroup (zarr v2) or zarr.json (zarr v3) files and was copied whole."
        ) from err


def is_multiscale(node) -> bool:
    ome = ome_attrs(node.attrs)
    return isinstance(node, zarr.Group) and bool(ome and ome.get("multiscales"))


def list_datasets(path: str) -> list[dict]:
    """Every volume-like entry under `path`: arrays of 2+ dims and whole OME multiscales."""
    root = open_node(path)
    if isinstance(root, zarr.Array) or is_multiscale(root):
        entries = [_describe("", root)]
    else:
        entries = []
    if isinstance(root, zarr.Group):
        entries += _walk(root, "", skip_levels=is_multiscale(root))
    return entries


def _walk(group, prefix: str, skip_levels: bool) -> list[dict]:
    found = []
    for name, node in sorted(group.members(), key=lambda m: m[0]):
        key = f"{prefix}{name}"
        if isinstance(node, zarr.Array):
            if not skip_levels and node.ndim >= 2:
                found.append(_describe(key, node))
        elif is_multiscale(node):
            found.append(_describe(key, node))
            found += _walk(node, key + "/", skip_levels=True)
        else:
            found += _walk(node, key + "/", skip_levels=False)
    return found


def _describe(key: str, node) -> dict:
    array = node if isinstance(node, zarr.Array) else node[parse_multiscale(node.attrs, key)["paths"][0]]
    return {"name": key, "shape": tuple(array.shape), "dtype": str(array.dtype),
            "multiscale": not isinstance(node, zarr.Array)}


def read_zarr(path: str, dataset: str | None = None) -> RawVolume:
    root = open_node(path)
    node, key = root, ""
    if dataset:
        try:
            node, key = root[dataset.strip("/")], dataset.strip("/")
        except KeyError:
            names = [d["name"] for d in list_datasets(path)]
            raise VolumeError(f"{path} has no dataset {dataset!r}; it has {names}.") from None
    elif isinstance(root, zarr.Group) and not is_multiscale(root):
        candidates = list_datasets(path)
        if len(candidates) != 1:
            raise VolumeError(choose_message(path, candidates))
        key = candidates[0]["name"]
        node = root[key]
    source = os.path.join(path, key) if key else path
    if is_multiscale(node):
        return _read_multiscale(node, source, root if not key else None)
    return _read_array(node, source, key)


def _read_multiscale(group, source: str, root=None) -> RawVolume:
    info = parse_multiscale(group.attrs, source)
    data = [lazy(group[p], f"{source}/{p}") for p in info["paths"]]
    extra = dict(group.attrs).get("napari_wbe", {})
    kind = "labels" if info["is_label"] else extra.get("kind")
    if kind is None and looks_like_labels(os.path.basename(source), data[0].dtype):
        kind = "labels"
    labels = []
    if "labels" in group and isinstance(group["labels"], zarr.Group):
        labels = [f"labels/{n}" for n in label_names(group["labels"].attrs)]
    metadata = {
        "format": f"ome-zarr {info['version']}",
        "translation": info["translation"],
        "channel_axis": info["channel_axis"],
        "labels": labels,
        "name": info["name"],
        **{k: v for k, v in extra.items() if k not in ("kind",)},
    }
    return RawVolume(data, info["axes"], info["voxel_size"], kind, metadata)


def _read_array(array, source: str, key: str) -> RawVolume:
    attrs = dict(array.attrs)
    fmt = f"zarr v{array.metadata.zarr_format}"
    axes = attrs.get("axes")
    axes = "".join(a[0].lower() for a in axes) if isinstance(axes, list) and all(isinstance(a, str) for a in axes) else None
    kind = attrs.get("napari_wbe", {}).get("kind") or ("labels" if looks_like_labels(key or source, array.dtype) else None)
    spatial = min(array.ndim, 3)
    return RawVolume(
        [lazy(array, source)], axes or default_axes(array.ndim, source),
        voxel_size_from_attrs(attrs, spatial), kind, {"format": fmt},
    )
