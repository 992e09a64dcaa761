"""Connectivity dock widget: the connectome of the Labels layer, explored in place.

Build it from the labels and the synapse points (or open a connectome file), then click a
neuron (or type its id; a Points layer carrying a connectome, like the C. elegans sample,
works the same way): its downstream partners light up warm, its upstream partners
cool, brighter for more synapses, everything else dimmed or hidden; optional lines join
the centroids. The partner table sorts by any column and selecting a row centres on that
partner. The matrix shows the neuron with its partners, or the whole circuit by type;
clicking a cell selects its presynaptic neuron. All of it is `napari_wbe.connectome`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, Label, LineEdit, PushButton, Slider
from napari.layers import Labels, Points
from napari.utils.colormaps import DirectLabelColormap

from .. import connectome as cxm
from ._frame_table import FrameTable
from ._jobs import JobHost
from ._layers import attach_connectome, connectome_layers, layer_connectome, on_click, viewer_camera
from ._matrix_view import MatrixView
from ._status import StatusArea

if TYPE_CHECKING:
    import napari

DIM, HIDE = "dim the rest", "hide the rest"
PARTNERS, BY_TYPE = "neuron and partners", "whole circuit by type"
LINES = "connections"
CENTROID = ["centroid_z", "centroid_y", "centroid_x"]
SELECTED_COLOUR = (1.0, 1.0, 1.0, 1.0)
DIMMED = (0.55, 0.55, 0.55, 0.12)


def partner_colour(direction: str, strength: float) -> tuple:
    """Warm for downstream, cool for upstream; strength 0..1 from faint to full."""
    strength = 0.35 + 0.65 * float(np.clip(strength, 0, 1))
    return (1.0, 0.55 * strength, 0.1, strength) if direction == "out" else (0.15, 0.7 * strength, 1.0, strength)


class ConnectivityWidget(JobHost, Container):
    def __init__(self, napari_viewer: "napari.viewer.Viewer"):
        super().__init__(labels=True)
        self._viewer = napari_viewer
        self.layer: Labels | Points | None = None
        self._full_colormap = None
        self._on_click = on_click(self._clicked)
        self.labels_layer = ComboBox(label="Neurons", choices=self._neuron_layers,
                                     tooltip="Labels, or points carrying a connectome (e.g. the C. elegans sample)")
        self.synapse_layer = ComboBox(label="Synapses", choices=self._points_layers, nullable=True,
                                      tooltip="Points with pre_z..post_x columns in their features")
        self.build_button = PushButton(text="Build connectome")
        self.file = FileEdit(label="Or a file", mode="r", value="",
                             tooltip="Codex connections.csv, Shiu Connectivity parquet, an edge list, a project")
        self.open_button = PushButton(text="Open connectome file")
        self.summary = Label(label="Connectome", value="–")
        self.neuron = LineEdit(label="Neuron", value="", tooltip="Type an id, or click a neuron in the viewer")
        self.min_syn = Slider(label="Min synapses", value=5, min=1, max=50, tooltip="Codex shows >= 5")
        self.others = ComboBox(label="Others", choices=[DIM, HIDE], value=DIM)
        self.lines = CheckBox(text="Lines between centroids", value=False)
        self.table = FrameTable(self._go_to_partner, sortable=True)
        self.matrix_mode = ComboBox(label="Matrix", choices=[PARTNERS, BY_TYPE], value=PARTNERS)
        self.matrix = MatrixView(self._picked_cell)
        self.export = FileEdit(label="Export table", mode="w", filter="*.csv", value="")
        self.export_button = PushButton(text="Export shown partners")
        self.clear_button = PushButton(text="Show all neurons")
        self.cancel = PushButton(text="Cancel", enabled=False)
        self.status = StatusArea()
        row = lambda *widgets: Container(widgets=widgets, layout="horizontal", labels=False)  # noqa: E731
        self.extend([self.labels_layer, self.synapse_layer, self.build_button, self.file, self.open_button,
                     self.summary, self.neuron, self.min_syn, self.others, self.lines, self.matrix_mode,
                     self.export, row(self.export_button, self.clear_button), self.cancel, self.status])
        layout = self.native.layout()
        layout.insertWidget(self.index(self.matrix_mode), self.table)
        layout.insertWidget(self.index(self.matrix_mode) + 2, self.matrix)
        self.build_button.changed.connect(self.build)
        self.open_button.changed.connect(self.open_file)
        self.neuron.changed.connect(lambda *_: self.show_neuron())
        for widget in (self.min_syn, self.others, self.lines, self.matrix_mode):
            widget.changed.connect(lambda *_: self.show_neuron())
        self.export_button.changed.connect(self.export_table)
        self.clear_button.changed.connect(self.show_all)
        self.cancel.changed.connect(self.cancel_job)
        self.labels_layer.changed.connect(self._attach)
        self._attach()

    # --- layers -----------------------------------------------------------------------
    def _neuron_layers(self, *_) -> list:
        return connectome_layers(self._viewer)

    def _points_layers(self, *_) -> list:
        return [layer for layer in self._viewer.layers if isinstance(layer, Points)]

    def busy_buttons(self) -> list:
        return [self.build_button, self.open_button]

    def _attach(self, *_) -> None:
        """Follow clicks on the chosen neuron layer (and only that one)."""
        if self.layer is not None and self._on_click in self.layer.mouse_drag_callbacks:
            self.show_all()
            self.layer.mouse_drag_callbacks.remove(self._on_click)
        self.layer = self.labels_layer.value
        if self.layer is not None:
            self.layer.mouse_drag_callbacks.append(self._on_click)
            self._summarise()

    @property
    def connectome(self) -> cxm.Connectome | None:
        return layer_connectome(self.layer)

    # --- building ---------------------------------------------------------------------
    def build(self):
        if not isinstance(self.layer, Labels) or self.synapse_layer.value is None:
            self.status.done("Pick a Labels layer and a synapse Points layer (with pre/post columns).", error=True)
            return None
        labels, synapses = self.layer.data, pd.DataFrame(self.synapse_layer.value.features)
        return self.start_job(lambda report: cxm.from_segmentation(labels, synapses), "Building the connectome",
                              self._built)

    def open_file(self):
        path = os.fspath(self.file.value)
        return self.start_job(lambda report: cxm.read(path), "Reading the connectome", self._built)

    def _built(self, cx) -> None:
        if self.layer is None:
            return
        attach_connectome(self.layer, cx)
        self._summarise()
        self.status.done(f"{cx}.")
        self.show_neuron()

    def _summarise(self) -> None:
        cx = self.connectome
        self.summary.value = "–" if cx is None else (f"{len(cx.neurons)} neurons, {len(cx.edges)} edges, "
                                                     f"{int(cx.edges['syn_count'].sum())} synapses")

    # --- one neuron -------------------------------------------------------------------
    def _clicked(self, layer, event, value) -> None:
        if isinstance(layer, Points):  # a point's index: its neuron id is in the features
            value = None if value is None else layer.features["index"].iloc[int(value)]
        if value:
            self.neuron.value = str(int(value))  # show_neuron follows

    def selected_id(self) -> int | None:
        text = str(self.neuron.value).strip()
        return int(text) if text.lstrip("-").isdigit() else None

    def partners(self) -> pd.DataFrame:
        """Both directions of the selected neuron at the threshold, strongest first."""
        cx, neuron = self.connectome, self.selected_id()
        if cx is None or neuron is None:
            return pd.DataFrame()
        tables = []
        for direction in ("out", "in"):
            table = cx.partners(neuron, direction=direction, min_syn=int(self.min_syn.value))
            tables.append(table.assign(direction=direction))
        both = pd.concat(tables, ignore_index=True)
        return both.sort_values("syn_count", ascending=False, kind="stable").reset_index(drop=True)

    def show_neuron(self) -> None:
        cx, neuron = self.connectome, self.selected_id()
        if cx is None or neuron is None or self.layer is None:
            return
        table = self.partners()
        self.table.set_frame(_first(table, ["direction", "partner", "syn_count"]), select_first=False)
        strongest = max(float(table["syn_count"].max()), 1.0) if len(table) else 1.0
        colours = {neuron: SELECTED_COLOUR}
        for row in table.itertuples():
            colours.setdefault(int(row.partner), partner_colour(row.direction, row.syn_count / strongest))
        self._light(colours, DIMMED if self.others.value == DIM else (0, 0, 0, 0))
        self._draw_lines(neuron, table)
        self._draw_matrix(neuron, table)
        n_out, n_in = int((table["direction"] == "out").sum()), int((table["direction"] == "in").sum())
        self.status.say(f"Neuron {neuron}: {n_out} downstream, {n_in} upstream partners with >= "
                        f"{int(self.min_syn.value)} synapses.")

    def _draw_lines(self, neuron: int, table: pd.DataFrame) -> None:
        if LINES in self._viewer.layers:
            self._viewer.layers.remove(LINES)
        positions = self.positions()
        if not self.lines.value or not len(table):
            return
        table = table[table["partner"].isin(positions.index)]
        if neuron not in positions.index or not len(table):
            return
        here = positions.loc[neuron].to_numpy(float)
        there = positions.loc[table["partner"]].to_numpy(float)
        lines = [np.stack([here, p]) for p in there]
        widths = 0.5 + 3.0 * table["syn_count"].to_numpy() / table["syn_count"].max()
        colours = [partner_colour(d, 1.0) for d in table["direction"]]
        self._viewer.add_shapes(lines, shape_type="line", name=LINES, edge_width=widths, edge_color=colours,
                                scale=self.layer.scale, translate=self.layer.translate)
        self._viewer.layers.selection.active = self.layer

    def _draw_matrix(self, neuron: int, table: pd.DataFrame) -> None:
        cx = self.connectome
        if self.matrix_mode.value == BY_TYPE and "type" in cx.neurons:
            self.matrix.show_matrix(cx.type_matrix(), "synapses between cell types")
            return
        ids = [neuron] + [i for i in table["partner"].tolist() if i != neuron]
        edges = cx.edges[cx.edges["pre"].isin(ids) & cx.edges["post"].isin(ids)]
        matrix = edges.pivot_table(index="pre", columns="post", values="syn_count", aggfunc="sum", fill_value=0)
        matrix = matrix.reindex(index=ids, columns=ids, fill_value=0)
        self.matrix.show_matrix(matrix, f"neuron {neuron} and its partners")

    def _picked_cell(self, pre, post) -> None:
        if isinstance(pre, (int, np.integer)):
            self.neuron.value = str(int(pre))
        self.status.say(f"{pre} -> {post}: {self.matrix.matrix.loc[pre, post]:g} synapses.")

    def _go_to_partner(self, row: pd.Series) -> None:
        positions = self.positions()
        if row["partner"] not in positions.index:
            return
        world = self.layer.data_to_world(positions.loc[row["partner"]].to_numpy(float))
        self._viewer.dims.set_point(range(3), world)
        viewer_camera(self._viewer).center = world

    def positions(self) -> pd.DataFrame:
        """Where each neuron is drawn (data coordinates), by id: centroids, or the points."""
        if isinstance(self.layer, Points):
            return pd.DataFrame(self.layer.data, index=self.layer.features["index"].to_numpy())
        neurons = self.connectome.neurons if self.connectome is not None else pd.DataFrame()
        return neurons[CENTROID] if set(CENTROID) <= set(neurons.columns) else pd.DataFrame(columns=CENTROID)

    def _light(self, colours: dict, others: tuple) -> None:
        """Colour the given neurons, the rest `others`; the first call keeps the original."""
        if self._full_colormap is None:
            self._full_colormap = (self.layer.face_color.copy() if isinstance(self.layer, Points)
                                   else self.layer.colormap)
        if isinstance(self.layer, Points):
            ids = self.layer.features["index"].to_numpy()
            self.layer.face_color = np.array([colours.get(int(i), others) for i in ids], float)
        else:
            self.layer.colormap = DirectLabelColormap(color_dict={None: others} | colours)

    def show_all(self) -> None:
        if self._full_colormap is not None and self.layer is not None:
            if isinstance(self.layer, Points):
                self.layer.face_color = self._full_colormap
            else:
                self.layer.colormap = self._full_colormap
        self._full_colormap = None
        if LINES in self._viewer.layers:
            self._viewer.layers.remove(LINES)

    def export_table(self) -> None:
        path = os.fspath(self.export.value)
        if not path or path == ".":
            self.status.say("Choose a CSV file to export to.", error=True)
            return
        self.table.frame.to_csv(path, index=False)
        self.status.say(f"Wrote {len(self.table.frame)} rows to {path}.")


def _first(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return table[[c for c in columns if c in table] + [c for c in table.columns if c not in columns]]
