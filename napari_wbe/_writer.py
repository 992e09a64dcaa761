"""npe2 writers: Image and Labels layers to OME-Zarr, all layers to a project folder."""

from __future__ import annotations

from .layer_data import layer_volume
from .project import project_from_layer_data, save_project
from .volumes import save_volume


def write_image(path: str, data, attributes: dict) -> list[str]:
    return [save_volume(layer_volume(data, attributes, None), _zarr_path(path), overwrite=True)]


def write_labels(path: str, data, attributes: dict) -> list[str]:
    return [save_volume(layer_volume(data, attributes, "labels"), _zarr_path(path), overwrite=True)]


def write_project(path: str, layer_data: list[tuple]) -> list[str]:
    return [save_project(project_from_layer_data(layer_data), path)]


def _zarr_path(path: str) -> str:
    return path if path.endswith(".zarr") else f"{path}.ome.zarr"
