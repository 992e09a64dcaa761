"""OME-Zarr (OME-NGFF 0.4 on zarr v2, 0.5 on zarr v3) metadata: read and write.

The spec is small enough that reading it directly from the zarr attributes keeps the
arrays lazy and under our control; files we write are checked against ome-zarr-py in
the tests.
"""

from __future__ import annotations

import numpy as np

from .common import VolumeError, nm_per_unit

SUPPORTED_VERSIONS = ("0.4", "0.5")


def ome_attrs(attrs) -> dict | None:
    """The OME block of a group's attributes (0.5 nests it under "ome"), or None."""
    attrs = dict(attrs)
    if isinstance(attrs.get("ome"), dict):
        return attrs["ome"]
    if "multiscales" in attrs or "labels" in attrs or "image-label" in attrs:
        return attrs
    return None


def parse_multiscale(attrs, where: str) -> dict:
    """Dataset paths, axes, voxel size (nm) and translation (nm) of the first multiscale."""
    ome = ome_attrs(attrs) or {}
    multiscales = ome.get("multiscales") or []
    if not multiscales:
        raise VolumeError(f"{where} has no OME-NGFF 'multiscales' metadata.")
    ms = multiscales[0]
    version = str(ms.get("version") or ome.get("version") or "0.4")
    axes = ms.get("axes") or [{"name": n} for n in "zyx"]
    # NGFF 0.3 and older wrote axes as plain strings.
    axes = [{"name": a} if isinstance(a, str) else a for a in axes]
    names = "".join(str(a["name"])[0].lower() for a in axes)
    space = [i for i, a in enumerate(axes) if a.get("type", "space" if a["name"] in "zyx" else "") == "space"]
    datasets = ms.get("datasets") or []
    if not datasets:
        raise VolumeError(f"{where}: the OME-NGFF multiscale lists no datasets.")
    scale, translation = _transforms(datasets[0].get("coordinateTransformations"), len(axes))
    # A multiscale-level transform applies after each dataset's own one.
    outer_scale, outer_translation = _transforms(ms.get("coordinateTransformations"), len(axes))
    scale = scale * outer_scale
    translation = translation * outer_scale + outer_translation
    to_nm = np.array([nm_per_unit(axes[i].get("unit")) for i in space])
    return {
        "version": version,
        "paths": [d["path"] for d in datasets],
        "axes": names,
        "channel_axis": next((i for i, a in enumerate(axes) if a.get("type") == "channel"), None),
        "voxel_size": tuple(float(v) for v in scale[space] * to_nm),
        "translation": tuple(float(v) for v in translation[space] * to_nm),
        "name": ms.get("name"),
        "is_label": "image-label" in ome,
    }


def _transforms(transforms, ndim: int):
    scale, translation = np.ones(ndim), np.zeros(ndim)
    for t in transforms or []:
        if t.get("type") == "scale" and "scale" in t:
            scale = np.asarray(t["scale"], dtype=float)
        elif t.get("type") == "translation" and "translation" in t:
            translation = np.asarray(t["translation"], dtype=float)
    return scale, translation


def label_names(labels_group_attrs) -> list[str]:
    ome = ome_attrs(labels_group_attrs) or {}
    return list(ome.get("labels") or [])


def multiscale_attrs(
    *,
    version: str,
    axes: str,
    level_scales: list[tuple[float, ...]],
    translation: tuple[float, ...],
    name: str,
    is_label: bool,
    extra: dict,
) -> dict:
    """Group attributes for a multiscale image; scales per level span every axis, in nm."""
    if version not in SUPPORTED_VERSIONS:
        raise VolumeError(f"OME-NGFF version {version!r} is not supported; use one of {SUPPORTED_VERSIONS}.")
    axis_list = [_axis(a) for a in axes]
    ms = {
        "name": name,
        "axes": axis_list,
        "datasets": [
            {
                "path": str(level),
                "coordinateTransformations": [{"type": "scale", "scale": list(map(float, scale))}]
                + ([{"type": "translation", "translation": list(map(float, translation))}] if any(translation) else []),
            }
            for level, scale in enumerate(level_scales)
        ],
        # Labels are downsampled by picking voxels, images by averaging.
        "type": "nearest" if is_label else "mean",
    }
    ome: dict = {"multiscales": [ms]}
    if is_label:
        ome["image-label"] = {"version": version} if version == "0.4" else {}
    if version == "0.4":
        ms["version"] = "0.4"
        return {**ome, "napari_wbe": extra}
    return {"ome": {"version": "0.5", **ome}, "napari_wbe": extra}


def labels_group_attrs(version: str, names: list[str]) -> dict:
    if version == "0.4":
        return {"labels": names}
    return {"ome": {"version": "0.5", "labels": names}}


def _axis(name: str) -> dict:
    if name == "c":
        return {"name": "c", "type": "channel"}
    if name == "t":
        return {"name": "t", "type": "time", "unit": "millisecond"}
    return {"name": name, "type": "space", "unit": "nanometer"}
