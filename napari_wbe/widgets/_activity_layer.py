"""The layer an emulation plays on: the neurons' shapes (a Labels layer of neuron indices)
or their points, and how a frame's colour table is painted on it.

The activity layer is display-only: its napari-wbe `kind` keeps it out of saved projects and
out of the widgets' layer choices; it is remade when the labels it came from are edited.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from napari.layers import Labels, Points
from napari.utils.colormaps import CyclicLabelColormap

from ..emulation import EmulationError
from ..emulation.activity import ACTIVITY, neuron_index_volume, pyramid
from ..layer_data import WBE_KEY


@dataclass
class ShownNeurons:
    """Where the network's neurons are drawn: an activity layer and what it needs."""

    layer: Labels | Points
    neuron_ids: np.ndarray
    centroids: np.ndarray   # data coordinates, NaN where a neuron has no voxels/point
    paint_rows: np.ndarray  # colour-table rows painted (points: one per point)
    missing: int            # neurons of the network with nothing to draw


def add_activity_layer(viewer, source: Labels | Points, neuron_ids: np.ndarray, where) -> ShownNeurons:
    """Add the activity layer for `source`; `where` is `labels_index(...)()`'s result for Labels."""
    common = {"name": f"{source.name} activity", "scale": source.scale, "translate": source.translate,
              "metadata": {WBE_KEY: {"kind": ACTIVITY, "source": source.name}}}
    if isinstance(source, Points):
        point_ids = source.features["index"].to_numpy(np.int64)
        rows = pd.Index(neuron_ids).get_indexer(point_ids)
        have = rows >= 0
        layer = viewer.add_points(source.data[have], size=np.asarray(source.size)[have] * 1.6, border_width=0,
                                  **common)
        centroids = np.full((len(neuron_ids), source.data.shape[1]), np.nan)
        centroids[rows[have]] = source.data[have]
        paint_rows, missing = rows[have] + 1, len(neuron_ids) - int(have.sum())
    else:
        index, counts, centroids = where
        layer = viewer.add_labels(pyramid(index), opacity=1.0, **common)
        paint_rows, missing = None, int((counts == 0).sum())
        source.visible = False  # the activity layer draws the same neurons
    viewer.layers.selection.active = layer
    return ShownNeurons(layer, np.asarray(neuron_ids), centroids, paint_rows, missing)


def painter(shown: ShownNeurons):
    """A function that paints an (N + 1, 4) colour table on the activity layer."""
    layer, rows = shown.layer, shown.paint_rows
    if isinstance(layer, Points):
        return lambda colours: setattr(layer, "face_color", colours[rows])
    # colour i of a cyclic table with N + 1 colours is label i: the GPU does the look-up
    return lambda colours: setattr(layer, "colormap", CyclicLabelColormap(colors=colours))


def labels_index(layer: Labels, cx):
    """A function (run in the worker) giving the neuron-index volume of a Labels layer, or an
    EmulationError if its ids and the connectome's do not meet."""
    labels = layer.data[0] if layer.multiscale else layer.data
    ids = cx.neurons.index.to_numpy(np.int64)

    def index():
        volume, counts, centroids = neuron_index_volume(labels, ids)
        if not counts.any():
            raise EmulationError(
                f"None of the connectome's {len(ids)} neurons has voxels in layer {layer.name!r}: its label ids do "
                "not match. Build the connectome from this layer (Connectivity widget) or open the one made from it.")
        return volume, counts, centroids

    return index
