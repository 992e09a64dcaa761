"""Layer helpers shared by the widgets: adding layer data, clicks, the connectome a layer
carries, and the few viewer parts whose place moved between napari versions."""

from __future__ import annotations

import pandas as pd

from ..layer_data import WBE_KEY, features_for_layer, features_from_layer


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


def viewer_camera(viewer):
    """The camera (napari >= 0.9 keeps it on `viewer.scene`)."""
    return getattr(viewer, "scene", viewer).camera


def layer_connectome(layer):
    """The Connectome a layer carries in its metadata, or None."""
    return None if layer is None else layer.metadata.get(WBE_KEY, {}).get("connectome")


def connectome_layers(viewer) -> list:
    """Labels layers, and Points layers that carry a connectome (e.g. the C. elegans sample)."""
    from napari.layers import Labels, Points

    return [layer for layer in viewer.layers if isinstance(layer, Labels)
            or (isinstance(layer, Points) and layer_connectome(layer) is not None)]


def attach_connectome(layer, cx) -> None:
    """Put `cx` in the layer's metadata; for Labels, its neuron table fills `features` (so
    napari's status bar shows type and NT) while the user's own columns stay."""
    from napari.layers import Labels

    layer.metadata.setdefault(WBE_KEY, {})["connectome"] = cx
    if not isinstance(layer, Labels):
        return
    old = features_from_layer(pd.DataFrame(layer.features)) if len(layer.features) else None
    neurons = cx.neurons if old is None else cx.neurons.join(old[old.columns.difference(cx.neurons.columns)],
                                                             how="outer")
    layer.features = features_for_layer(neurons)
