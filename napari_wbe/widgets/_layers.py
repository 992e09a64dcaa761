"""Adding layer-data tuples to a viewer through its public add_* methods."""

from __future__ import annotations


def add_layer_data(viewer, layer_data: list[tuple]) -> list:
    """Add [(data, kwargs, layer_type)] and return the layers created."""
    layers = []
    for data, kwargs, layer_type in layer_data:
        added = getattr(viewer, f"add_{layer_type}")(data, **kwargs)
        layers += added if isinstance(added, list) else [added]
    if viewer.dims.ndim == 3:  # name the sliders as the data's axes, not -3, -2, -1
        viewer.dims.axis_labels = ("z", "y", "x")
    return layers
