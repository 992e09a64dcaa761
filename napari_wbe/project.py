"""A napari-wbe project: one folder holding a whole session, saved atomically.

    <name>.wbe/
      project.json                      the manifest; replaced in one os.replace per save
      images/<name>.<rev>.ome.zarr      each image as OME-Zarr (NGFF 0.4, with a pyramid)
      labels/<name>.<rev>.ome.zarr      each segmentation as OME-Zarr labels
      tables/<name>.<rev>.parquet       per-neuron features, synapses, edges, ...
      logs/<labels>.<rev>.jsonl         edit logs of the segmentations

Every save writes new revisions next to the old ones and switches the manifest last, so a
crash at any point leaves the previous version readable; files no manifest names are
removed by the next successful save. Volumes already stored in the project and opened
lazily from it are referenced again, not copied.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .connectome import Connectome
from .formats.common import VolumeError
from .formats.ome_writer import write_ome_zarr
from .layer_data import WBE_KEY, features_for_layer, features_from_layer, layer_volume, volume_layer_data
from .volumes import KINDS, Volume, as_volume, open_volume

MANIFEST = "project.json"
FORMAT_NAME = "napari-wbe project"
FORMAT_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.+-]*$")


class ProjectError(VolumeError):
    """A project cannot be saved or opened as asked; the message says how to fix it."""


@dataclass
class Project:
    """Everything of a session: volumes, per-neuron tables, synapses and edit logs."""

    images: dict[str, Any] = field(default_factory=dict)  # name -> Volume or array
    labels: dict[str, Any] = field(default_factory=dict)  # name -> Volume or integer array
    features: dict[str, pd.DataFrame] = field(default_factory=dict)  # labels name -> one row per neuron
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # "synapses", "edges", ...
    edit_logs: dict[str, str] = field(default_factory=dict)  # labels name -> log file
    voxel_size: tuple[float, ...] | None = None  # for arrays given without a Volume
    metadata: dict[str, Any] = field(default_factory=dict)
    path: str | None = None


def is_project(path) -> bool:
    return os.path.isfile(os.path.join(os.fspath(path), MANIFEST))


def save_project(project: Project, path, progress: Callable[[int, int], None] | None = None) -> str:
    """Write `project` to the folder `path` (created if missing); returns the path."""
    path = os.path.abspath(os.fspath(path))
    volumes = _check(project, path)  # every problem is reported before anything is written
    os.makedirs(path, exist_ok=True)
    rev = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    manifest = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "saved": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "metadata": project.metadata, "images": {}, "labels": {}, "features": {}, "tables": {},
                "edit_logs": {}}
    for step, (group, name, vol) in enumerate(volumes):
        manifest[group][name] = _store_volume(vol, path, group, name, rev)
        if progress:
            progress(step + 1, len(volumes))
    for group, tables in (("features", project.features), ("tables", project.tables)):
        for name, table in tables.items():
            manifest[group][name] = _store_table(table, path, name, rev, features=group == "features")
    for name, log in project.edit_logs.items():
        manifest["edit_logs"][name] = _store_log(log, path, name, rev)
    _write_manifest(path, manifest)
    _remove_unreferenced(path, manifest)
    project.path = path
    return path


def _check(project: Project, path: str) -> list[tuple[str, str, Volume]]:
    if os.path.exists(path) and not os.path.isdir(path):
        raise ProjectError(f"{path} is a file; a project is a folder. Choose another path.")
    if os.path.isdir(path) and os.listdir(path) and not is_project(path):
        raise ProjectError(f"{path} is a folder that is not a napari-wbe project; choose an empty or new folder.")
    volumes = []
    for group, kind in (("images", None), ("labels", "labels")):
        for name, item in getattr(project, group).items():
            _check_name(name, group)
            volumes.append((group, name, _as_volume(item, kind, project.voxel_size, name)))
    for group in ("features", "tables", "edit_logs"):
        for name, item in getattr(project, group).items():
            _check_name(name, group)
            if group != "edit_logs" and not isinstance(item, pd.DataFrame):
                raise ProjectError(f"{group}[{name!r}] must be a pandas DataFrame, not {type(item).__name__}.")
            if group == "edit_logs" and not os.path.isfile(item):
                raise ProjectError(f"The edit log {item!r} of {name!r} does not exist.")
    for name in project.features:
        if name not in project.labels:
            raise ProjectError(f"features[{name!r}] belongs to no labels volume; labels are {list(project.labels)}.")
    return volumes


def _check_name(name: str, group: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name) or "/" in name:
        raise ProjectError(f"{group} name {name!r} must be letters, digits, spaces or _ . + - (it names a file).")


def _as_volume(item, kind, voxel_size, name) -> Volume:
    """Arrays get the project's voxel size; anything stored as labels must be integer ids."""
    if not isinstance(item, Volume) and kind is None:
        kind = "exm" if np.ndim(item) == 4 else "em"  # under `images`, integers are intensities too
    try:
        return as_volume(item, voxel_size=None if isinstance(item, Volume) else voxel_size, kind=kind, name=name)
    except VolumeError as err:
        raise ProjectError(str(err)) from err


def _store_volume(vol: Volume, root: str, group: str, name: str, rev: str) -> dict:
    existing = _inside(vol.metadata.get("path"), root)
    entry = {"kind": vol.kind, "axes": vol.axes, "voxel_size": list(vol.voxel_size)}
    if existing and existing.startswith(f"{group}/"):
        return entry | {"path": existing}  # already stored in this project: nothing to copy
    rel = f"{group}/{_slug(name)}.{rev}.ome.zarr"
    os.makedirs(os.path.join(root, group), exist_ok=True)
    write_ome_zarr(vol, os.path.join(root, rel), True, "0.4", overwrite=False)
    return entry | {"path": rel}


def _inside(path, root: str) -> str | None:
    """`path` relative to `root` when it lies inside, else None."""
    if not path:
        return None
    rel = os.path.relpath(os.path.realpath(os.fspath(path)), os.path.realpath(root))
    return None if rel.startswith("..") else rel.replace(os.sep, "/")


def _store_table(table: pd.DataFrame, root: str, name: str, rev: str, features: bool) -> str:
    rel = f"tables/{'features-' if features else ''}{_slug(name)}.{rev}.parquet"
    os.makedirs(os.path.join(root, "tables"), exist_ok=True)
    target = os.path.join(root, rel)
    _atomic_write(target, lambda tmp: table.to_parquet(tmp, index=True))
    return rel


def _store_log(log: str, root: str, name: str, rev: str) -> str:
    rel = f"logs/{_slug(name)}.{rev}.jsonl"
    os.makedirs(os.path.join(root, "logs"), exist_ok=True)
    _atomic_write(os.path.join(root, rel), lambda tmp: shutil.copyfile(log, tmp))
    return rel


def _atomic_write(target: str, write: Callable[[str], Any]) -> None:
    tmp = f"{target}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _write_manifest(root: str, manifest: dict) -> None:
    text = json.dumps(manifest, indent=2, default=_json_default)
    _atomic_write(os.path.join(root, MANIFEST), lambda tmp: open(tmp, "w").write(text))


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (tuple, np.ndarray)):
        return list(value)
    return str(value)


def _remove_unreferenced(root: str, manifest: dict) -> None:
    """Delete revisions that the manifest no longer names (left by earlier saves or crashes)."""
    keep = {entry["path"] if isinstance(entry, dict) else entry
            for group in ("images", "labels", "features", "tables", "edit_logs")
            for entry in manifest[group].values()}
    for group in ("images", "labels", "tables", "logs"):
        folder = os.path.join(root, group)
        if not os.path.isdir(folder):
            continue
        for entry in os.listdir(folder):
            rel = f"{group}/{entry}"
            if rel in keep:
                continue
            full = os.path.join(folder, entry)
            shutil.rmtree(full, ignore_errors=True) if os.path.isdir(full) else os.remove(full)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", name)


def open_project(path) -> Project:
    """Open a project folder; volumes stay lazy on disk."""
    path = os.path.abspath(os.fspath(path))
    manifest = _read_manifest(path)
    project = Project(metadata=manifest.get("metadata", {}), path=path)
    for group in ("images", "labels"):
        for name, entry in manifest.get(group, {}).items():
            kind = entry.get("kind") if entry.get("kind") in KINDS else None  # older saves wrote display kinds ("confidence")
            vol = open_volume(os.path.join(path, entry["path"]), kind=kind)
            vol.metadata["name"] = name
            getattr(project, group)[name] = vol
    for group in ("features", "tables"):
        for name, rel in manifest.get(group, {}).items():
            getattr(project, group)[name] = pd.read_parquet(os.path.join(path, rel))
    project.edit_logs = {name: os.path.join(path, rel) for name, rel in manifest.get("edit_logs", {}).items()}
    return project


def _read_manifest(path: str) -> dict:
    if not os.path.isdir(path):
        raise ProjectError(f"No project folder at {path!r}.")
    if not is_project(path):
        raise ProjectError(f"{path} has no {MANIFEST}: it is not a napari-wbe project (open volumes with open_volume).")
    try:
        with open(os.path.join(path, MANIFEST)) as f:
            manifest = json.load(f)
    except json.JSONDecodeError as err:
        raise ProjectError(f"{path}/{MANIFEST} is damaged ({err}); restore it from a backup.") from err
    if manifest.get("format") != FORMAT_NAME:
        raise ProjectError(f"{path}/{MANIFEST} is not a napari-wbe manifest.")
    if int(manifest.get("version", 0)) > FORMAT_VERSION:
        raise ProjectError(
            f"{path} was saved by a newer napari-wbe (project format {manifest['version']}; this one reads "
            f"up to {FORMAT_VERSION}). Upgrade napari-wbe to open it."
        )
    return manifest


def project_layer_data(project: Project) -> list[tuple]:
    """Layers for napari: images, then labels carrying their features, connectome and log."""
    layers = []
    for name, vol in project.images.items():
        layers += volume_layer_data(_as_volume(vol, None, project.voxel_size, name), name=name)
    for name, item in project.labels.items():
        vol = _as_volume(item, "labels", project.voxel_size, name)
        data, kwargs, kind = volume_layer_data(vol, name=name)[0]
        if name in project.features:
            kwargs["features"] = features_for_layer(project.features[name])
        wbe = kwargs["metadata"][WBE_KEY]
        wbe["edit_log"] = project.edit_logs.get(name)
        if "edges" in project.tables:
            neurons = project.features.get(name, pd.DataFrame(index=pd.Index([], dtype="int64")))
            wbe["connectome"] = Connectome(neurons=neurons, edges=project.tables["edges"])
        layers.append((data, kwargs, kind))
        if "synapses" in project.tables:
            layers.append(synapse_points(project.tables["synapses"], kwargs["scale"], kwargs["translate"]))
    return layers


def synapse_points(synapses: pd.DataFrame, scale, translate) -> tuple:
    """Synapses as a Points layer at their presynaptic voxels, the table as features."""
    coords = synapses[["pre_z", "pre_y", "pre_x"]].to_numpy(dtype=float)
    kwargs = {"name": "synapses", "features": synapses.reset_index(drop=True), "scale": scale[-3:],
              "translate": translate[-3:], "size": 3, "face_color": "yellow", "border_width": 0,
              "out_of_slice_display": False, "visible": True}
    return (coords, kwargs, "points")


def project_from_layer_data(layer_data: list[tuple], metadata: dict | None = None) -> Project:
    """A Project from napari layer-data tuples (what `layer.as_layer_data_tuple()` gives).

    Images and Labels become volumes; a Labels layer's features become its neuron table and
    its napari-wbe metadata gives the edit log and connectome edges; a Points layer named
    "synapses" gives the synapse table.
    """
    project = Project(metadata=dict(metadata or {}))
    for data, attributes, layer_type in layer_data:
        name = attributes.get("name", layer_type)
        if ((attributes.get("metadata") or {}).get(WBE_KEY) or {}).get("kind") == "activity":
            continue  # an emulation's display layer: remade by running it again
        if layer_type in ("image", "labels"):
            kind = "labels" if layer_type == "labels" else None
            vol = layer_volume(data, attributes, kind)
            source = ((attributes.get("metadata") or {}).get(WBE_KEY) or {}).get("path")
            if source and _is_lazy(data, attributes.get("multiscale")):  # unchanged on disk: a project save can reuse it
                vol.metadata["path"] = source
            getattr(project, "labels" if kind else "images")[name] = vol
        if layer_type == "labels":
            wbe = (attributes.get("metadata") or {}).get(WBE_KEY) or {}
            features = attributes.get("features")
            if features is not None and len(features):
                project.features[name] = features_from_layer(pd.DataFrame(features))
            if wbe.get("edit_log"):
                project.edit_logs[name] = wbe["edit_log"]
            if isinstance(wbe.get("connectome"), Connectome):
                project.tables["edges"] = wbe["connectome"].edges
        if layer_type == "points" and name == "synapses":
            features = attributes.get("features")
            if features is not None and len(features):
                project.tables["synapses"] = pd.DataFrame(features)
    return project


def _is_lazy(data, multiscale: bool) -> bool:
    """Dask data cannot be painted on, so it still equals the file it came from."""
    levels = list(data) if multiscale else [data]
    return all(type(level).__module__.startswith("dask") for level in levels)
