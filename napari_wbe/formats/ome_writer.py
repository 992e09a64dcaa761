"""Write a Volume as an OME-Zarr multiscale, atomically (temporary folder, then rename)."""

from __future__ import annotations

import os
import shutil
import uuid

import dask
import dask.array as da
import numpy as np
import zarr

from .common import VolumeError, compute_with_progress
from .ngff import SUPPORTED_VERSIONS, label_names, labels_group_attrs, multiscale_attrs

# Slices larger than this get another pyramid level, so napari draws a coarse level first.
PYRAMID_TARGET = 256
MAX_LEVELS = 10


def write_ome_zarr(vol, path: str, multiscale, ngff_version: str, overwrite: bool, progress=None) -> str:
    if ngff_version not in SUPPORTED_VERSIONS:
        raise VolumeError(f"ngff_version must be one of {SUPPORTED_VERSIONS}, not {ngff_version!r}.")
    if os.path.exists(path) and not overwrite:
        raise VolumeError(f"{path} already exists; pass overwrite=True to replace it, or choose another path.")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise VolumeError(f"The folder {parent} does not exist; create it first.")
    tmp = os.path.join(parent, f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        write_multiscale_group(vol, tmp, multiscale, ngff_version, progress)
        replace_folder(tmp, path)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def replace_folder(new: str, target: str) -> None:
    """Move a complete folder into place; an old one is moved aside first, then removed."""
    if os.path.exists(target):
        old = f"{target}.old-{uuid.uuid4().hex[:8]}"
        os.rename(target, old)
        os.rename(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(new, target)


def write_multiscale_group(vol, path: str, multiscale, version: str, progress=None, name: str | None = None):
    """Write a multiscale image into the zarr group at `path` (created if missing)."""
    zarr_format = 2 if version == "0.4" else 3
    group = zarr.open_group(path, mode="a", zarr_format=zarr_format)
    base = vol.levels[0]
    is_label = vol.kind == "labels"
    factors = pyramid_factors(vol.shape, vol.axes, vol.voxel_size, multiscale)
    level_scales, arrays = [], []
    source = da.asarray(base)
    scale = _full_scale(vol.axes, vol.voxel_size)
    for level, factor in enumerate([None, *factors]):
        if factor is not None:
            source = downsample(arrays[-1], factor, is_label)
            scale = [s * f for s, f in zip(scale, factor)]
        chunks = _chunks(source.shape, vol.axes)
        target = group.create_array(
            str(level), shape=source.shape, dtype=source.dtype, chunks=chunks, overwrite=True,
            **({"chunk_key_encoding": {"name": "v2", "separator": "/"}} if zarr_format == 2 else {}),
            fill_value=0,
        )
        _store(source.rechunk(chunks), target, progress, level, len(factors) + 1)
        arrays.append(da.from_zarr(target))
        level_scales.append(tuple(scale))
    translation = _full_translation(vol.axes, vol.metadata.get("translation"))
    extra = {"kind": vol.kind, "expansion_factor": vol.metadata.get("expansion_factor", 1.0)}
    group.attrs.update(
        multiscale_attrs(
            version=version, axes=vol.axes, level_scales=level_scales, translation=translation,
            name=name or os.path.basename(path.rstrip("/")).split(".tmp-")[0].lstrip("."),
            is_label=is_label, extra=extra,
        )
    )
    return group


def add_labels(image_path: str, vol, name: str, version: str, multiscale=True, progress=None) -> None:
    """Write `vol` as `labels/<name>` of an OME-Zarr image (the NGFF labels convention)."""
    zarr_format = 2 if version == "0.4" else 3
    labels = zarr.open_group(os.path.join(image_path, "labels"), mode="a", zarr_format=zarr_format)
    names = label_names(labels.attrs)
    write_multiscale_group(vol, os.path.join(image_path, "labels", name), multiscale, version, progress, name)
    if name not in names:
        names.append(name)
    labels.attrs.update(labels_group_attrs(version, names))


def pyramid_factors(shape, axes: str, voxel_size, multiscale) -> list[tuple[int, ...]]:
    """Per-level downsampling factors per axis.

    Each level halves the axes whose voxels are finest, so an anisotropic volume (coarse z)
    first becomes isotropic instead of losing its few z slices.
    """
    if multiscale is False or (multiscale is not True and int(multiscale) <= 1):
        return []
    spatial_index = [i for i, a in enumerate(axes) if a in "zyx"]
    sizes = dict(zip(spatial_index, voxel_size))
    shape = list(shape)
    levels = []
    while len(levels) < (MAX_LEVELS if multiscale is True else int(multiscale) - 1):
        if multiscale is True and max(shape[i] for i in spatial_index[-2:]) <= PYRAMID_TARGET:
            break
        finest = min(sizes.values())
        factor = [2 if i in sizes and sizes[i] < 2 * finest and shape[i] >= 2 else 1 for i in range(len(shape))]
        if all(f == 1 for f in factor):
            break
        levels.append(tuple(factor))
        for i, f in enumerate(factor):
            shape[i] //= f
            if i in sizes:
                sizes[i] *= f
    return levels


def downsample(array: da.Array, factor: tuple[int, ...], is_label: bool) -> da.Array:
    if is_label:  # averaging ids would invent new ones
        return array[tuple(slice(None, None, f) for f in factor)][
            tuple(slice(0, s // f) for s, f in zip(array.shape, factor))
        ]
    axes = {i: f for i, f in enumerate(factor) if f > 1}
    mean = da.coarsen(np.mean, array.astype(np.float32), axes, trim_excess=True)
    if np.dtype(array.dtype).kind in "iu":
        mean = da.round(mean)
    return mean.astype(array.dtype)


def _chunks(shape, axes: str) -> tuple[int, ...]:
    """64^3 spatial chunks (one per channel): a good slice-and-3D compromise for napari."""
    return tuple(1 if a in "ct" else min(64, s) for a, s in zip(axes, shape))


def _full_scale(axes: str, voxel_size) -> list[float]:
    sizes = iter(voxel_size)
    return [next(sizes) if a in "zyx" else 1.0 for a in axes]


def _full_translation(axes: str, translation) -> tuple[float, ...]:
    if not translation:
        return (0.0,) * len(axes)
    values = iter(translation)
    return tuple(float(next(values)) if a in "zyx" else 0.0 for a in axes)


def _store(source: da.Array, target, progress, level: int, n_levels: int) -> None:
    task = da.store(source, target, lock=False, compute=False)
    if progress is None:
        dask.compute(task)
        return
    # Levels are written one after another; report them as one job in thousandths.
    compute_with_progress(task, lambda done, total: progress(int(1000 * (level + done / total) / n_levels), 1000))
