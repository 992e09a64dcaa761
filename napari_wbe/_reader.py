"""npe2 reader: drag a volume, container or project folder onto napari."""

from __future__ import annotations

import os

from .formats.common import VolumeError
from .layer_data import volume_layer_data
from .volumes import detect_format, list_datasets, open_volume


def get_reader(path):
    """Return a reader function when napari-wbe can open `path`, else None."""
    if isinstance(path, list):
        return None  # several files: napari asks each on its own
    path = os.fspath(path)
    from .project import is_project

    if is_project(path):
        return read_project
    try:
        detect_format(path)
    except VolumeError:
        return None
    return read_volume


def read_volume(path) -> list[tuple]:
    """Every volume in the file: a container with raw + labels (CREMI, an OME-Zarr image
    with labels/) gives one layer each."""
    path = os.fspath(path)
    layers = []
    for entry in list_datasets(path):
        layers += volume_layer_data(open_volume(path, dataset=entry["name"] or None))
    return layers


def read_project(path) -> list[tuple]:
    from .project import open_project, project_layer_data

    return project_layer_data(open_project(path))
