"""Open and save EM and ExM volumes, lazily, at their true voxel size.

    vol = open_volume("brain.ome.zarr")            # OME-Zarr, zarr, N5, HDF5, TIFF, slice folder
    vol = open_volume("rounds.tif", voxel_size=(40, 40, 40), expansion_factor=4)
    save_volume(vol, "copy.ome.zarr")               # OME-Zarr (NGFF 0.4) with a pyramid

Arrays stay on disk (dask) until a slice is shown; voxel sizes are nm per spatial axis in
tissue units (the raw size divided by the expansion factor of ExM).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import dask.array as da
import numpy as np

from .formats import hdf5, n5, tiff, zarr_files
from .formats.common import RawVolume, VolumeError, compute_with_progress
from .formats.ome_writer import write_ome_zarr

__all__ = [
    "FORMATS",
    "Volume",
    "VolumeError",
    "as_volume",
    "detect_format",
    "list_datasets",
    "load_into_memory",
    "open_volume",
    "save_volume",
]

KINDS = ("em", "exm", "labels")

# Format name -> what it is, for error messages and the README's table.
FORMATS = {
    "ome-zarr": "OME-Zarr (NGFF 0.4/0.5): multiscale, axes, scale/translation, labels/",
    "zarr": "plain zarr v2 or v3 array or group",
    "n5": "N5 container (.n5), multiscale s0, s1, ...",
    "hdf5": "HDF5 (.h5/.hdf5/.hdf): CREMI, FlyEM stack(+transforms), single datasets",
    "tiff": "multi-page TIFF, ImageJ hyperstack or OME-TIFF",
    "slices": "folder of 2D PNG/TIFF/JPEG slices, natural sort order",
}

_HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")


@dataclass
class Volume:
    """A lazily loaded volume with its physical calibration."""

    data: Any  # an array, or a list of arrays (multiscale, finest first)
    axes: str  # e.g. "zyx", "czyx"
    voxel_size: tuple[float, ...]  # nm per spatial axis (z, y, x order), tissue units
    kind: str  # "em" | "exm" | "labels"
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def multiscale(self) -> bool:
        return isinstance(self.data, list)

    @property
    def levels(self) -> list:
        return self.data if self.multiscale else [self.data]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.levels[0].shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.levels[0].dtype)

    @property
    def spatial_axes(self) -> str:
        return "".join(a for a in self.axes if a in "zyx")

    @property
    def channel_axis(self) -> int | None:
        return self.axes.index("c") if "c" in self.axes else None

    def __repr__(self) -> str:
        size = " x ".join(f"{v:g}" for v in self.voxel_size)
        levels = f", {len(self.levels)} levels" if self.multiscale else ""
        return (f"Volume({self.kind}, axes={self.axes!r}, shape={self.shape}, dtype={self.dtype}, "
                f"voxel_size=({size}) nm{levels}, format={self.metadata.get('format')!r})")


def detect_format(path: str | os.PathLike) -> str:
    """Which reader opens `path`, or a VolumeError naming the supported formats."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise VolumeError(f"No file or folder at {path!r}. Check the path (relative paths start at {os.getcwd()}).")
    lowered = path.rstrip("/").lower()
    if os.path.isdir(path):
        if n5.is_n5(path):
            return "n5"
        if _is_zarr_folder(path):
            return "ome-zarr" if zarr_files.is_multiscale(zarr_files.open_node(path)) else "zarr"
        if tiff.is_slice_folder(path):
            return "slices"
    elif lowered.endswith(_HDF5_SUFFIXES):
        return "hdf5"
    elif lowered.endswith(tiff.TIFF_SUFFIXES):
        return "tiff"
    elif lowered.endswith(".gz"):
        raise VolumeError(f"{path} is gzip-compressed; unpack it first (gunzip {os.path.basename(path)}).")
    supported = "; ".join(FORMATS.values())
    raise VolumeError(f"Cannot tell the format of {path!r}. napari-wbe opens: {supported}.")


def _is_zarr_folder(path: str) -> bool:
    return any(os.path.exists(os.path.join(path, m)) for m in ("zarr.json", ".zgroup", ".zarray")) or (
        path.rstrip("/").endswith(".zarr")
    )


def list_datasets(path: str | os.PathLike) -> list[dict]:
    """The volumes inside a container: dicts of name, shape, dtype, multiscale."""
    path = os.fspath(path)
    fmt = detect_format(path)
    if fmt in ("ome-zarr", "zarr"):
        return zarr_files.list_datasets(path)
    if fmt == "n5":
        return n5.list_datasets(path)
    if fmt == "hdf5":
        return hdf5.list_datasets(path)
    return [{"name": "", "shape": None, "dtype": None, "multiscale": False}]


def open_volume(
    path: str | os.PathLike,
    dataset: str | None = None,
    voxel_size: float | Sequence[float] | None = None,
    expansion_factor: float = 1.0,
    kind: str | None = None,
    channel_axis: int | None = None,
    apply_transforms: bool = True,
) -> Volume:
    """Open a volume lazily.

    dataset: inside an HDF5/zarr/N5 container; required when it holds several volumes.
    voxel_size: nm per spatial axis (z, y, x) or one number; overrides the file's metadata.
        Without either, (1, 1, 1) is used and `metadata["voxel_size_source"]` says "default".
    expansion_factor: ExM linear expansion; voxel sizes are divided by it (tissue units).
    kind: "em", "exm" or "labels"; guessed from the file when None.
    channel_axis: which axis holds barcode channels/rounds (recognised from metadata when None).
    apply_transforms: map FlyEM supervoxel `stack`s through their `transforms` table to bodies.
    """
    expansion_factor = _check_expansion(expansion_factor)
    user_voxel_size = _check_voxel_size(voxel_size)
    if kind is not None and kind not in KINDS:
        raise VolumeError(f"kind must be one of {KINDS}, not {kind!r}.")
    path = os.fspath(path)
    raw = _read(path, detect_format(path), dataset, apply_transforms)
    return _finish(raw, path, user_voxel_size, expansion_factor, kind, channel_axis)


def _read(path: str, fmt: str, dataset: str | None, apply_transforms: bool) -> RawVolume:
    if fmt in ("ome-zarr", "zarr"):
        return zarr_files.read_zarr(path, dataset)
    if fmt == "n5":
        return n5.read_n5(path, dataset)
    if fmt == "hdf5":
        return hdf5.read_hdf5(path, dataset, apply_transforms)
    if fmt == "tiff":
        return tiff.read_tiff(path)
    return tiff.read_slices(path)


def _finish(raw: RawVolume, path, user_voxel_size, expansion_factor, kind, channel_axis) -> Volume:
    axes = raw.axes
    if channel_axis is not None:
        axes = _with_channel_axis(axes, channel_axis, path)
    spatial = [a for a in axes if a in "zyx"]
    metadata = {"path": path, **raw.metadata, "expansion_factor": expansion_factor}
    if user_voxel_size is not None:
        size, source = _broadcast(user_voxel_size, len(spatial)), "user"
    elif raw.voxel_size is not None:
        size, source = tuple(raw.voxel_size)[-len(spatial):], "file"
    else:
        size, source = (1.0,) * len(spatial), "default"
    metadata["voxel_size_source"] = source
    metadata["raw_voxel_size"] = tuple(size)
    voxel_size = tuple(float(s) / expansion_factor for s in size)
    if "translation" in metadata:
        metadata["translation"] = tuple(float(t) / expansion_factor for t in metadata["translation"][-len(spatial):])
    dtype = np.dtype(raw.data[0].dtype)
    kind = kind or raw.kind or ("exm" if "c" in axes else "em")
    if kind == "labels" and dtype.kind not in "iub":
        raise VolumeError(
            f"{path} holds {dtype} values, but labels must be integers (one id per neuron). "
            "Open it as kind='em' (an image), or convert the ids with .astype('uint32') first."
        )
    data = raw.data if len(raw.data) > 1 else raw.data[0]
    return Volume(data, axes, voxel_size, kind, metadata)


def _with_channel_axis(axes: str, channel_axis: int, path: str) -> str:
    ndim = len(axes)
    if not -ndim <= channel_axis < ndim:
        raise VolumeError(f"channel_axis={channel_axis} is out of range for {path} with {ndim} axes ({axes}).")
    channel_axis %= ndim
    if axes[channel_axis] == "c":
        return axes
    others = "tzyx"[-(ndim - 1):]  # the remaining axes keep napari's order
    return others[:channel_axis] + "c" + others[channel_axis:]


def _check_expansion(expansion_factor) -> float:
    try:
        value = float(expansion_factor)
    except (TypeError, ValueError):
        raise VolumeError(f"expansion_factor must be a number, not {expansion_factor!r}.") from None
    if not np.isfinite(value) or value <= 0:
        raise VolumeError(
            f"expansion_factor must be > 0 (1 for EM, e.g. 4 for 4x ExM); got {expansion_factor!r}."
        )
    return value


def _check_voxel_size(voxel_size):
    if voxel_size is None:
        return None
    values = [voxel_size] if np.isscalar(voxel_size) else list(voxel_size)
    try:
        sizes = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise VolumeError(
            f"voxel_size must be numbers in nm, e.g. 8 or (40, 8, 8) for z, y, x; got {voxel_size!r}."
        ) from None
    if not sizes or not all(np.isfinite(s) and s > 0 for s in sizes):
        raise VolumeError(f"voxel_size must be positive numbers in nm; got {voxel_size!r}.")
    return sizes


def _broadcast(sizes: tuple[float, ...], n: int) -> tuple[float, ...]:
    if len(sizes) == 1:
        return sizes * n
    if len(sizes) != n:
        raise VolumeError(f"voxel_size has {len(sizes)} values but the volume has {n} spatial axes.")
    return sizes


def as_volume(array_or_volume, voxel_size=None, axes: str | None = None, kind: str | None = None,
              name: str | None = None) -> Volume:
    """A Volume from an array (axes guessed from its dimensions) or a Volume with overrides.

    Arrays of 32/64-bit integers are taken as labels, 4-D arrays as ExM channels first.
    Float data given as labels is refused: ids must be integers.
    """
    if kind is not None and kind not in KINDS:
        raise VolumeError(f"kind must be one of {KINDS}, not {kind!r}.")
    if isinstance(array_or_volume, Volume):
        vol = array_or_volume
        vol = replace(vol, voxel_size=_check_voxel_size(voxel_size) or vol.voxel_size, kind=kind or vol.kind,
                      axes=axes or vol.axes)
    else:
        array = array_or_volume
        axes = axes or {2: "yx", 3: "zyx", 4: "czyx"}.get(np.ndim(array))
        if axes is None or len(axes) != np.ndim(array):
            raise VolumeError(f"axes={axes!r} does not fit an array of shape {np.shape(array)}; name each axis.")
        dtype = np.dtype(array.dtype)
        kind = kind or ("labels" if dtype.kind in "iu" and dtype.itemsize >= 4 else "exm" if "c" in axes else "em")
        n_spatial = sum(a in "zyx" for a in axes)
        size = _broadcast(_check_voxel_size(voxel_size) or (1.0,), n_spatial)
        vol = Volume(array, axes, size, kind, {"name": name} if name else {})
    if vol.kind == "labels" and vol.dtype.kind not in "iub":
        what = f"labels {name!r}" if name else "Labels"
        raise VolumeError(f"{what} must be integers (one id per neuron); got {vol.dtype}. Use .astype('uint32').")
    return vol


def save_volume(
    array_or_volume,
    path: str | os.PathLike,
    voxel_size: float | Sequence[float] | None = None,
    axes: str | None = None,
    multiscale: bool | int = True,
    kind: str | None = None,
    ngff_version: str = "0.4",
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> str:
    """Write OME-Zarr (NGFF 0.4 on zarr v2 by default, "0.5" for zarr v3) with a pyramid.

    multiscale: True for levels until the slice fits 256 px, an int for that many levels,
        False for one. Labels are downsampled by picking voxels, images by averaging.
    The folder is written under a temporary name and renamed when complete, so a crash
    leaves no half-written volume and an existing one is only replaced by a whole one.
    Returns the path written.
    """
    vol = as_volume(array_or_volume, voxel_size=voxel_size, axes=axes, kind=kind)
    return write_ome_zarr(vol, os.fspath(path), multiscale, ngff_version, overwrite, progress)


def load_into_memory(vol: Volume, progress: Callable[[int, int], None] | None = None) -> Volume:
    """The finest level as a numpy array (editable, e.g. to paint labels), with progress."""
    data = vol.levels[0]
    array = compute_with_progress(data, progress) if isinstance(data, da.Array) else np.asarray(data)
    return replace(vol, data=array, metadata={**vol.metadata, "in_memory": True})
