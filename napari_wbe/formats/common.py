"""Shared pieces of the format readers: the RawVolume record, lazy wrapping, units."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.callbacks import Callback


class VolumeError(ValueError):
    """A volume cannot be opened or saved as asked; the message says how to fix it."""


@dataclass
class RawVolume:
    """What a reader found in a file, before the user's overrides are applied."""

    data: list  # one array per pyramid level, finest first
    axes: str  # e.g. "zyx" or "czyx"
    voxel_size: tuple[float, ...] | None = None  # nm per spatial axis, None = unknown
    kind: str | None = None  # "em" | "exm" | "labels" when the file says so
    metadata: dict[str, Any] = field(default_factory=dict)


# Length units to nanometres, covering NGFF (UDUNITS-2 names) and ImageJ/N5 habits.
_NM_PER_UNIT = {
    "angstrom": 0.1,
    "nanometer": 1.0,
    "nm": 1.0,
    "micrometer": 1e3,
    "micron": 1e3,
    "um": 1e3,
    "µm": 1e3,
    "\\u00B5m": 1e3,
    "millimeter": 1e6,
    "mm": 1e6,
    "centimeter": 1e7,
    "meter": 1e9,
    "m": 1e9,
}


def nm_per_unit(unit: str | None) -> float:
    """Factor from `unit` to nanometres; unknown or missing units are taken as nm."""
    if not unit:
        return 1.0
    return _NM_PER_UNIT.get(str(unit).strip().lower(), 1.0)


def lazy(array, source: str, chunks=None, lock: bool = False) -> da.Array:
    """Wrap an on-disk array as dask, naming the file and chunk when a read fails.

    Reading happens only when napari asks for a slice, so a damaged chunk would otherwise
    surface as an anonymous codec error deep in a draw call.
    """
    if isinstance(array, da.Array):
        return array
    chunks = chunks if chunks is not None else getattr(array, "chunks", None) or "auto"

    def checked_getitem(a, index):
        try:
            return np.asarray(a[index])
        except Exception as err:  # any codec or I/O failure means the same thing here
            raise VolumeError(
                f"Could not read voxels {_describe_index(index)} of {source}: {err!r}. "
                "The file is probably damaged or truncated (e.g. an interrupted copy); "
                "copy it again from its source, or re-save it with save_volume."
            ) from err

    # An explicit name avoids dask hashing the whole array to make a token.
    name = f"wbe-{uuid.uuid4().hex}"
    return da.from_array(array, chunks=chunks, name=name, lock=lock, getitem=checked_getitem,
                         meta=np.empty((0,) * len(array.shape), dtype=array.dtype))


def _describe_index(index) -> str:
    if not isinstance(index, tuple):
        index = (index,)
    parts = [f"{s.start}:{s.stop}" if isinstance(s, slice) else str(s) for s in index]
    return "[" + ", ".join(parts) + "]"


def voxel_size_from_attrs(attrs, ndim_spatial: int = 3, xyz_order: bool = False):
    """Voxel size in nm from common attribute conventions, or None.

    CREMI/HDF5 and many zarr writers use `resolution` (z, y, x); N5 tools (BigDataViewer,
    Paintera) use `resolution` or `pixelResolution` in x, y, z order.
    """
    unit = attrs.get("unit") or attrs.get("units")
    for key in ("voxel_size", "resolution", "pixelResolution", "pixel_size", "element_size_um"):
        if key not in attrs:
            continue
        value = attrs[key]
        if isinstance(value, dict):  # N5 pixelResolution: {"dimensions": [...], "unit": "nm"}
            unit = value.get("unit", unit)
            value = value.get("dimensions")
        if key == "element_size_um":
            unit = "um"
        try:
            sizes = [float(v) for v in np.ravel(value)]
        except (TypeError, ValueError):
            continue
        if len(sizes) < ndim_spatial or not all(s > 0 for s in sizes):
            continue
        sizes = sizes[-ndim_spatial:] if not xyz_order else sizes[:ndim_spatial][::-1]
        if isinstance(unit, (list, tuple)):
            unit = unit[0] if unit else None
        factor = nm_per_unit(unit)
        return tuple(s * factor for s in sizes)
    return None


def looks_like_labels(name: str, dtype) -> bool:
    """Guess whether a dataset is a segmentation from its name and integer type.

    32/64-bit integers are almost always ids; 8/16-bit ones need a telling name.
    """
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu":
        return False
    if dtype.itemsize >= 4:
        return True
    words = re.split(r"[^a-z0-9]+", name.lower())
    hints = ("label", "seg", "neuron", "groundtruth", "gt", "ws", "fragment", "bod", "supervoxel")
    return any(word.startswith(hint) for word in words for hint in hints)


def default_axes(ndim: int, source: str) -> str:
    """Axis names for an array whose file does not name them (napari's z, y, x order)."""
    axes = {2: "yx", 3: "zyx", 4: "czyx", 5: "tczyx"}.get(ndim)
    if axes is None:
        raise VolumeError(f"{source} has {ndim} dimensions; napari-wbe opens 2 to 5 (t, c, z, y, x).")
    return axes


def choose_message(path: str, candidates: list[dict]) -> str:
    """Error text when a file holds several volumes and none was chosen."""
    if not candidates:
        return f"{path} holds no array with 2 or more dimensions to open."
    listing = ", ".join(f"{c['name']!r} {c['shape']} {c['dtype']}" for c in candidates)
    return f"{path} holds several volumes: {listing}. Choose one with dataset=..."


class _TaskProgress(Callback):
    """Reports finished dask tasks as progress(done, total)."""

    def __init__(self, report: Callable[[int, int], None]):
        super().__init__()
        self.report = report

    def _start_state(self, dsk, state):
        # Keys already in the cache (the source arrays themselves) are not tasks to run.
        self.total = max(len(dsk) - len(state["cache"]), 1)
        self.done = 0

    def _posttask(self, key, result, dsk, state, worker_id):
        self.done = min(self.done + 1, self.total)
        self.report(self.done, self.total)


def compute_with_progress(task, progress: Callable[[int, int], None] | None = None):
    """dask.compute with a plain progress callback; an exception raised by the callback
    (e.g. the user cancelled) stops the computation."""
    if progress is None:
        return dask.compute(task)[0]
    with _TaskProgress(progress):
        return dask.compute(task)[0]
