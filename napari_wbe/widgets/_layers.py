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


def on_click(handler):
    """A mouse-drag callback that calls `handler(layer, event, value)` for a click (press
    and release without moving, so panning never selects); `value` is what is under the
    cursor, in 2D or along the view ray in 3D: a label, or a point's index (None: nothing)."""

    def callback(layer, event):
        dragged = False
        yield
        while event.type == "mouse_move":
            dragged = True
            yield
        if not dragged:
            value = layer.get_value(event.position, view_direction=event.view_direction,
                                    dims_displayed=event.dims_displayed, world=True)
            handler(layer, event, value)

    return callback
