"""Volumes as napari layer-data tuples, without importing napari.

The reader, the loader widget and the project loader all turn a `Volume` into layers the
same way: physical scale from the voxel size, one layer per barcode channel, labels as
Labels. Keeping that here (plain dicts) lets tests check it without a display.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from .volumes import KINDS, Volume

# Layer metadata key under which napari-wbe keeps its facts (source, kind, connectome, log).
WBE_KEY = "napari_wbe"

# Colours that stay distinct when barcode channels are blended additively.
CHANNEL_COLORMAPS = ["green", "magenta", "cyan", "yellow", "red", "blue", "bop orange", "bop purple"]


def volume_layer_data(vol: Volume, name: str | None = None) -> list[tuple]:
    """[(data, kwargs, layer_type)] for napari; ExM channels become one layer each."""
    name = name or vol.metadata.get("name") or _default_name(vol)
    scale = tuple(vol.voxel_size)
    translate = tuple(vol.metadata.get("translation") or (0.0,) * len(scale))
    meta = {WBE_KEY: {k: v for k, v in vol.metadata.items() if _plain(v)} | {"kind": vol.kind,
                                                                          "voxel_size": scale}}
    kwargs = {"name": name, "scale": _non_channel(vol, scale, 1.0), "translate": _non_channel(vol, translate, 0.0),
              "metadata": meta}
    if vol.multiscale:
        kwargs["multiscale"] = True
    if vol.kind == "labels":
        return [(vol.data, kwargs, "labels")]
    if vol.channel_axis is not None:
        n = vol.shape[vol.channel_axis]
        kwargs |= {
            "channel_axis": vol.channel_axis,
            "name": [f"{name} [{i}]" for i in range(n)],
            "colormap": [CHANNEL_COLORMAPS[i % len(CHANNEL_COLORMAPS)] for i in range(n)],
            "blending": "additive",
        }
        if vol.dtype == np.uint8:
            kwargs["contrast_limits"] = [[0, 255]] * n
        return [(vol.data, kwargs, "image")]
    if vol.dtype == np.uint8:  # skips napari reading the whole volume for a range
        kwargs["contrast_limits"] = [0, 255]
    return [(vol.data, kwargs, "image")]


def _non_channel(vol: Volume, spatial_values: tuple, fill: float) -> tuple:
    """Per-axis values for every axis napari sees: channel axis removed, `fill` for time."""
    values = iter(spatial_values)
    return tuple(next(values) if a in "zyx" else fill for a in vol.axes if a != "c")


def _default_name(vol: Volume) -> str:
    path = str(vol.metadata.get("path", "volume")).rstrip("/")
    stem = os.path.basename(path).split(".")[0] or "volume"
    dataset = vol.metadata.get("dataset")
    return f"{stem}/{dataset}" if dataset else stem


def _plain(value) -> bool:
    """Only JSON-like facts go into layer metadata (no open file handles or arrays)."""
    return isinstance(value, (str, int, float, bool, type(None), tuple, list))


def layer_volume(data, attributes: dict, kind: str | None) -> Volume:
    """A layer's data and state (scale = voxel size) as a Volume to save."""
    levels = list(data) if attributes.get("multiscale") else [data]
    scale = tuple(attributes.get("scale") or (1.0,) * levels[0].ndim)
    ndim = levels[0].ndim
    axes = "zyx"[-ndim:] if ndim <= 3 else "tzyx"[-ndim:]
    wbe = (attributes.get("metadata") or {}).get(WBE_KEY, {})
    kind = kind or (wbe.get("kind") if wbe.get("kind") in KINDS else None) or "em"  # e.g. "confidence" is an image
    spatial = scale[-min(ndim, 3):]
    metadata = {"translation": tuple(attributes.get("translate") or ())[-len(spatial):],
                "expansion_factor": wbe.get("expansion_factor", 1.0)}
    return Volume(levels[0], axes, spatial, kind, metadata)


def features_for_layer(neurons: pd.DataFrame) -> pd.DataFrame:
    """A neuron table (index = neuron id) as Labels `features`: napari finds a label's row
    through the `index` column, so the id goes there."""
    table = neurons.copy()
    table.index = table.index.astype("int64")
    return table.rename_axis("index").reset_index()


def features_from_layer(features: pd.DataFrame) -> pd.DataFrame:
    """Labels `features` back to a neuron table indexed by neuron id."""
    if "index" not in features.columns:
        return features.rename_axis("neuron_id")
    table = features.set_index("index")
    table.index = table.index.astype("int64")
    return table.rename_axis("neuron_id")
