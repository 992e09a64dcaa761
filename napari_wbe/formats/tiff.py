"""Multi-page TIFF (ImageJ hyperstacks, OME-TIFF, plain page stacks) and folders of
2D slices (PNG/TIFF/JPEG), each read a page or slice at a time.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import dask
import dask.array as da
import numpy as np
import tifffile
import zarr
from natsort import natsorted
from PIL import Image

from .common import RawVolume, VolumeError, default_axes, lazy, looks_like_labels, nm_per_unit

SLICE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8")

# tifffile axis codes: I (image sequence), Q (unknown) and Z are all depth here.
_AXIS_CODES = {"Z": "z", "I": "z", "Q": "z", "Y": "y", "X": "x", "C": "c", "S": "c", "T": "t"}


def read_tiff(path: str) -> RawVolume:
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes = "".join(_AXIS_CODES.get(a, "?") for a in series.axes)
            voxel_size = _tiff_voxel_size(tif, axes)
    except (tifffile.TiffFileError, OSError, IndexError) as err:
        raise VolumeError(f"{path} is not a readable TIFF file ({err}).") from err
    if "?" in axes or len(set(axes)) != len(axes):
        # Generic writers label extra axes "Q": fall back to napari's order; the user can
        # still say which axis holds channels (open_volume's channel_axis).
        axes = default_axes(len(series.axes), path)
    store = tifffile.imread(path, aszarr=True)
    array = zarr.open(store, mode="r")
    if isinstance(array, zarr.Group):  # pyramidal TIFF: take the full-resolution level
        array = array["0"]
    kind = "labels" if looks_like_labels(os.path.basename(path), array.dtype) else None
    return RawVolume([lazy(array, path)], axes, voxel_size, kind, {"format": "tiff"})


def _tiff_voxel_size(tif: tifffile.TiffFile, axes: str):
    spatial = [a for a in axes if a in "zyx"]
    if tif.is_ome and tif.ome_metadata:
        size = _ome_tiff_voxel_size(tif.ome_metadata, spatial)
        if size:
            return size
    page = tif.pages[0]
    tags = page.tags
    if "XResolution" not in tags or "YResolution" not in tags:
        return None
    # Only ImageJ's calibration is trusted: a plain TIFF's dpi says nothing about voxels.
    ij = tif.imagej_metadata or {}
    unit = str(ij.get("unit", "")).replace("\\u00B5", "µ")
    if unit in ("", "pixel", "inch"):
        return None
    to_nm = nm_per_unit(unit)
    x = _pixels_per_unit(tags["XResolution"].value)
    y = _pixels_per_unit(tags["YResolution"].value)
    if not x or not y:
        return None
    size = {"y": to_nm / y, "x": to_nm / x, "z": float(ij.get("spacing", 1.0)) * to_nm}
    return tuple(size[a] for a in spatial)


def _pixels_per_unit(value) -> float:
    num, den = value if isinstance(value, tuple) else (value, 1)
    return num / den if den else 0.0


def _ome_tiff_voxel_size(xml: str, spatial: list[str]):
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    pixels = next((el for el in root.iter() if el.tag.endswith("Pixels")), None)
    if pixels is None:
        return None
    size = {}
    for axis in spatial:
        value = pixels.get(f"PhysicalSize{axis.upper()}")
        if value is None:
            return None
        size[axis] = float(value) * nm_per_unit(pixels.get(f"PhysicalSize{axis.upper()}Unit", "µm"))
    return tuple(size[a] for a in spatial)


def slice_files(folder: str) -> list[str]:
    names = [n for n in os.listdir(folder) if n.lower().endswith(SLICE_SUFFIXES) and not n.startswith(".")]
    return [os.path.join(folder, n) for n in natsorted(names)]


def is_slice_folder(folder: str) -> bool:
    return os.path.isdir(folder) and bool(slice_files(folder))


def read_slices(folder: str) -> RawVolume:
    """A folder of 2D images, one z-slice each, sorted naturally (2 before 10)."""
    files = slice_files(folder)
    if not files:
        raise VolumeError(f"{folder} holds no image slices ({', '.join(SLICE_SUFFIXES)}).")
    shapes = {}
    for f in files:  # headers only: cheap even for thousands of slices
        with Image.open(f) as im:
            shapes.setdefault((im.size[1], im.size[0], im.mode), []).append(os.path.basename(f))
    if len(shapes) > 1:
        summary = "; ".join(f"{len(v)} of {k[1]}x{k[0]} {k[2]} (e.g. {v[0]})" for k, v in shapes.items())
        raise VolumeError(
            f"The slices in {folder} differ in size or mode: {summary}. All slices of a stack must "
            "match; move the odd ones out of the folder or crop them to the same size."
        )
    first = _read_slice(files[0])
    reads = [da.from_delayed(dask.delayed(_read_slice)(f), first.shape, first.dtype) for f in files]
    stack = da.stack(reads)
    kind = "labels" if looks_like_labels(os.path.basename(folder.rstrip("/")), first.dtype) else None
    axes = "zyx" if first.ndim == 2 else "zyxc"
    metadata = {"format": "slices", "n_slices": len(files), "first_slice": os.path.basename(files[0])}
    return RawVolume([stack], axes, None, kind, metadata)


def _read_slice(path: str) -> np.ndarray:
    try:
        if path.lower().endswith((".tif", ".tiff")):
            return tifffile.imread(path)
        with Image.open(path) as im:
            return np.asarray(im)
    except Exception as err:
        raise VolumeError(f"Could not read slice {path}: {err!r}. The file is damaged; replace it.") from err
