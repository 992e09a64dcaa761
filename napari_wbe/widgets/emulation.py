"""Emulation dock widget: stimulate neurons picked in the viewer, run the circuit, and watch
the activity play on the segmented neurons (or on points, for a connectome without a volume).

Set up: the connectome comes from the chosen layer (built by the connectivity widget, a
project or a sample) or a file; click neurons to stimulate, silence or read out. Results:
the most active neurons and a frequency sweep. Play: the raster with a cursor that follows
the animation, play/pause/scrub, and movie export. Everything runs `napari_wbe.emulation`.

Playing in place: the label volume is turned once into neuron indices (uint16) shown as a
second, multiscale Labels layer; a frame only swaps that layer's colour table, so no voxel
is copied per frame and napari renders the coarsest level in 3D.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
    SpinBox,
)
from napari.layers import Labels, Points
from qtpy.QtWidgets import QTabWidget

from .. import connectome as cxm
from ..emulation import EmulationError, ModelParams, frequency_sweep, simulate
from ..emulation.activity import ACTIVITY, raster_rows
from ..emulation.params import NEURON_PARAMS
from ..layer_data import WBE_KEY
from ._activity_layer import ShownNeurons, add_activity_layer, labels_index, painter
from ._frame_table import FrameTable
from ._jobs import JobHost
from ._layers import attach_connectome, connectome_layers, layer_connectome, on_click, viewer_camera
from ._player import PlayControls
from ._plots import RasterView, SweepView
from ._status import StatusArea
from ._stimulus_picker import StimulusPicker, neuron_type

if TYPE_CHECKING:
    import napari

MAX_TRACE_VALUES = 50_000_000  # membrane traces of every neuron are kept below this many values
SET_UP, RESULTS, PLAY = range(3)


class EmulationWidget(JobHost, Container):
    def __init__(self, napari_viewer: "napari.viewer.Viewer"):
        super().__init__(labels=True)
        self._viewer = napari_viewer
        self.layer: Labels | Points | None = None
        self.result = None
        self.shown: ShownNeurons | None = None
        self._stale = False  # the layer's labels changed since the activity layer was made
        self._on_click = on_click(self._clicked)
        self.neuron_layer = ComboBox(label="Neurons", choices=self._neuron_layers,
                                     tooltip="Labels carrying a connectome, or points (e.g. the C. elegans sample)")
        self.file = FileEdit(label="Or a file", mode="r", value="", tooltip="A connectome file for this layer")
        self.open_button = PushButton(text="Open connectome file")
        self.summary = Label(label="Connectome", value="–")
        self.picker = StimulusPicker(self._say, self._picks_changed)
        self.duration = FloatSpinBox(label="Duration (ms)", value=1000.0, min=1.0, max=1e6, step=100.0)
        self.trials = SpinBox(label="Trials", value=1, min=1, max=1000)
        self.seed = SpinBox(label="Seed", value=0, min=0, max=2**31 - 1)
        self.precision = ComboBox(label="Precision", choices=["float32", "float64"], value="float32",
                                  tooltip="float64 reproduces Brian2 spike for spike; float32 is faster")
        self.per_neuron = Label(label="Per-neuron columns", value="none")
        self.show_params = CheckBox(text="Show model parameters", value=False)
        self.params = Container(widgets=[_parameter_box(name, value) for name, value in asdict(ModelParams()).items()
                                         if name != "rate_hz"], visible=False)
        self.top = FrameTable(self._select_neuron, sortable=True)
        self.sweep_rates = LineEdit(label="Stimulus rates (Hz)", value="0 50 100 150 200 250")
        self.sweep_button = PushButton(text="Sweep readout rate")
        self.sweep = SweepView()
        self.controls = PlayControls(self._frame_shown, self._say, self._screenshot)
        self.turn = CheckBox(text="Turn the camera while exporting (3D)", value=False)
        self.controls.insert(self.controls.index(self.controls.export_button), self.turn)
        self.raster = RasterView(self.controls.seek)
        self.run_button = PushButton(text="Run")
        self.cancel = PushButton(text="Cancel", enabled=False)
        self.status = StatusArea()

        row = lambda *widgets: Container(widgets=widgets, layout="horizontal", labels=False)  # noqa: E731
        set_up = Container(widgets=[self.neuron_layer, self.file, self.open_button, self.summary, self.picker,
                                    self.duration, self.trials, self.seed, self.precision, self.per_neuron,
                                    self.show_params, self.params])
        results = Container(widgets=[self.sweep_rates, self.sweep_button])
        results.native.layout().insertWidget(0, self.top)
        results.native.layout().addWidget(self.sweep)
        play = Container(widgets=[self.controls])
        play.native.layout().insertWidget(0, self.raster)
        self.tabs = QTabWidget()
        self._pages = (set_up, results, play)
        for container, title in zip(self._pages, ("Set up", "Results", "Play")):
            self.tabs.addTab(container.native, title)
        self.extend([row(self.run_button, self.cancel), self.status])
        self.native.layout().insertWidget(0, self.tabs)

        self.neuron_layer.changed.connect(self._attach)
        self.open_button.changed.connect(self.open_file)
        self.show_params.changed.connect(lambda shown: setattr(self.params, "visible", shown))
        self.run_button.changed.connect(self.run)
        self.cancel.changed.connect(self.cancel_job)
        self.sweep_button.changed.connect(self.run_sweep)
        self.controls.trial.changed.connect(self._draw_raster)
        self._attach()

    def reset_choices(self, *_) -> None:
        """napari calls this when layers change; the pages live in tabs, outside `self`."""
        super().reset_choices()
        for page in self._pages:
            page.reset_choices()

    # --- the connectome ---------------------------------------------------------------
    def _neuron_layers(self, *_) -> list:
        return [layer for layer in connectome_layers(self._viewer)
                if layer.metadata.get(WBE_KEY, {}).get("kind") != ACTIVITY]

    @property
    def connectome(self):
        return layer_connectome(self.layer)

    def busy_buttons(self) -> list:
        return [self.run_button, self.open_button, self.sweep_button]

    def _say(self, message: str, error: bool = False) -> None:
        self.status.say(message, error=error)

    def _attach(self, *_) -> None:
        """Follow clicks on the chosen layer and show its connectome."""
        if self.layer is not None and self._on_click in self.layer.mouse_drag_callbacks:
            self.layer.mouse_drag_callbacks.remove(self._on_click)
            for event in (self.layer.events.data, getattr(self.layer.events, "paint", None)):
                if event is not None:
                    event.disconnect(self._labels_edited)
        self.layer = self.neuron_layer.value
        if self.layer is not None:
            self.layer.mouse_drag_callbacks.append(self._on_click)
            self.layer.events.data.connect(self._labels_edited)
            if isinstance(self.layer, Labels):  # proofreading paints: the index volume is redone
                self.layer.events.paint.connect(self._labels_edited)
        self._summarise()

    def _labels_edited(self, *_) -> None:
        self._stale = True

    def _summarise(self) -> None:
        cx = self.connectome
        self.picker.set_neurons(cx.neurons if cx is not None else pd.DataFrame())
        self.summary.value = "–" if cx is None else f"{len(cx.neurons)} neurons, {len(cx.edges)} edges"
        columns = [] if cx is None else [c for c in NEURON_PARAMS if c in cx.neurons.columns]
        self.per_neuron.value = ", ".join(columns) or "none (every neuron uses the template)"

    def open_file(self, *_):
        path = os.fspath(self.file.value)
        if self.layer is None:
            self._say("Pick the layer this connectome belongs to first.", error=True)
            return None
        return self.start_job(lambda report: cxm.read(path), "Reading the connectome", self._opened)

    def _opened(self, cx) -> None:
        attach_connectome(self.layer, cx)
        self._summarise()
        self.status.done(f"{cx}.")

    # --- picking ----------------------------------------------------------------------
    def _clicked(self, layer, event, value) -> None:
        if value is None or (value == 0 and isinstance(layer, Labels)):  # point 0 is a point; label 0 is not
            return
        if self.shown is not None and layer is self.shown.layer:
            value = self.shown.neuron_ids[self.shown.paint_rows[int(value)] - 1 if isinstance(layer, Points)
                                          else int(value) - 1]
        elif isinstance(layer, Points):
            value = layer.features["index"].iloc[int(value)]
        self.picker.add([int(value)])

    def _picks_changed(self) -> None:
        """Mark the new picks on the activity layer at once (green stimulated, blue silenced)."""
        controls = getattr(self, "controls", None)  # the picker reports while the widget is built
        if controls is not None and controls.frames is not None and self.shown is not None:
            controls.roles = self.picker.roles(self.shown.neuron_ids)
            controls.show(controls.frame)

    # --- running ----------------------------------------------------------------------
    def model_params(self) -> ModelParams:
        values = {widget.name: float(widget.value) for widget in self.params}
        return ModelParams(**values, rate_hz=float(self.picker.rate.value))

    def run(self, *_):
        """Check the set-up, then simulate off the GUI thread; playing starts when it is done."""
        if not self.run_button.enabled:
            self._say("A run is already going: wait for it or press Cancel.", error=True)
            return None
        cx, stimulus = self.connectome, self.picker.stimulus()
        if cx is None:
            self._say("This layer has no connectome: build it in the Connectivity widget or open a file.", error=True)
            return None
        if not stimulus:
            self._say("Nothing to stimulate: set 'A click will' to stimulate and click neurons in the viewer, "
                      "or type their ids or a cell type and press Add.", error=True)
            return None
        try:
            params = self.model_params()
            params.per_neuron(cx.neurons)  # parameter columns checked now, not in the worker
        except EmulationError as err:
            self._say(str(err), error=True)
            return None
        duration, trials, seed = float(self.duration.value), int(self.trials.value), int(self.seed.value)
        traced = len(cx.neurons) * duration / params.dt * trials <= MAX_TRACE_VALUES
        silence, precision, layer = self.picker.silenced(), self.precision.value, self.layer
        shown = self.shown if self._shown_fits(cx) else None
        index = None if shown is not None or isinstance(layer, Points) else labels_index(layer, cx)

        def work(report):
            where = index() if index is not None else None  # label look-up first: a mismatch stops the run
            result = simulate(cx, stimulus=stimulus, duration_ms=duration, trials=trials, silence=silence,
                              params=params, seed=seed, precision=precision, progress=report,
                              record_v=list(cx.neurons.index) if traced else ())
            return where, result

        return self.start_job(work, "Simulating", self._ran)

    def _shown_fits(self, cx) -> bool:
        return (self.shown is not None and not self._stale and self.shown.layer in self._viewer.layers
                and np.array_equal(self.shown.neuron_ids, cx.neurons.index.to_numpy(np.int64))
                and self.shown.layer.metadata[WBE_KEY]["source"] == self.layer.name)

    def _ran(self, outcome) -> None:
        where, self.result = outcome
        result = self.result
        if where is not None or not self._shown_fits(self.connectome):
            self.shown = self._show_activity_layer(result.neuron_ids, where)
            self._stale = False
        roles = self.picker.roles(result.neuron_ids)
        paint = self._painter()
        self._fill_top(result, roles)
        self.controls.load(result, roles, paint)
        self._draw_raster()
        self.tabs.setCurrentIndex(PLAY)
        self.controls.play()
        fired = result.spikes.groupby("trial")["neuron"].nunique().mean() if len(result.spikes) else 0
        note = f" {self.shown.missing} neurons have nothing to draw here." if self.shown.missing else ""
        self.status.done(f"{len(result.spikes):,} spikes in {result.trials} trial(s) of {result.duration_ms:g} ms; "
                         f"{fired:.0f} neurons fired per trial. Playing trial {self.controls.trial.value}.{note}")

    # --- playing in place -------------------------------------------------------------
    def _show_activity_layer(self, neuron_ids: np.ndarray, where) -> ShownNeurons:
        if self.shown is not None and self.shown.layer in self._viewer.layers:
            self._viewer.layers.remove(self.shown.layer)
        shown = add_activity_layer(self._viewer, self.layer, neuron_ids, where)
        shown.layer.mouse_drag_callbacks.append(self._on_click)
        return shown

    def _painter(self):
        return painter(self.shown)

    def _frame_shown(self, frame: int, t_ms: float) -> None:
        self.raster.set_cursor(t_ms)

    def _screenshot(self) -> np.ndarray:
        """The canvas for a movie frame; in 3D, optionally one full turn of the camera over the movie."""
        camera, frames = viewer_camera(self._viewer), self.controls.frames
        if self.turn.value and self._viewer.dims.ndisplay == 3:
            if self.controls.frame == 0:
                self._start_angles = camera.angles
            first, second, third = self._start_angles  # a full turn about the second Euler axis
            camera.angles = (first, second + 360.0 * self.controls.frame / frames.n_frames, third)
        return self._viewer.screenshot(canvas_only=True, flash=False)

    def _draw_raster(self, *_) -> None:
        if self.result is None:
            return
        trial = int(self.controls.trial.value)
        first = [i for i, r in zip(self.result.neuron_ids, self.controls.roles) if r in ("stimulated", "silenced")]
        spikes, order = raster_rows(self.result, trial, first=first)
        roles = self.picker.roles(order)
        self.raster.show_spikes(spikes, order, roles, self.result.duration_ms,
                                f"trial {trial}: {len(spikes):,} spikes, {len(order)} neurons")
        self.raster.set_cursor(self.controls.frames.time_ms(self.controls.frame))

    # --- results ----------------------------------------------------------------------
    def _fill_top(self, result, roles: np.ndarray) -> None:
        rates = result.rates().assign(role=roles)
        rates.insert(1, "type", neuron_type(self.connectome.neurons).reindex(rates["neuron"]).fillna("").to_numpy())
        rates = rates.sort_values("mean_hz", ascending=False, kind="stable").head(200)
        self.top.set_frame(rates.round({"mean_hz": 2, "sd_hz": 2}), select_first=False)

    def _select_neuron(self, row: pd.Series) -> None:
        """Centre the view on a neuron of the table."""
        if self.shown is None:
            return
        if isinstance(self.layer, Labels):
            self.layer.selected_label = int(row["neuron"])
        i = int(np.flatnonzero(self.shown.neuron_ids == row["neuron"])[0])
        where = self.shown.centroids[i]
        if np.all(np.isfinite(where)):
            world = self.shown.layer.data_to_world(where)
            self._viewer.dims.set_point(range(len(world)), world)
            viewer_camera(self._viewer).center = world
        self._say(f"Neuron {row['neuron']} ({row['type'] or 'no type'}): {row['mean_hz']:.1f} ± {row['sd_hz']:.1f} Hz.")

    def run_sweep(self, *_):
        cx, stimulus, readout = self.connectome, self.picker.stimulus(), self.picker.readout()
        if cx is None or not stimulus or not readout:
            self._say("A sweep needs stimulated neurons and a readout: set 'A click will' to read out and click "
                      "the neuron to watch.", error=True)
            return None
        try:
            rates = [float(r) for r in str(self.sweep_rates.value).replace(",", " ").split()]
        except ValueError:
            self._say("Stimulus rates: numbers in Hz separated by spaces, e.g. 0 50 100 150.", error=True)
            return None
        params, options = self.model_params(), {"silence": self.picker.silenced(), "precision": self.precision.value}
        duration, trials, seed = float(self.duration.value), int(self.trials.value), int(self.seed.value)

        def work(report):
            report(0, len(rates))
            return frequency_sweep(cx, list(stimulus), readout, rates, duration_ms=duration, trials=trials,
                                   params=params, seed=seed, **options)

        return self.start_job(work, "Sweeping the stimulus rate", self._swept)

    def _swept(self, sweep: pd.DataFrame) -> None:
        self.sweep.show_sweep(sweep)
        self.tabs.setCurrentIndex(RESULTS)
        self.status.done(f"Swept {sweep['stimulus_hz'].nunique()} stimulus rates.")


def _parameter_box(name: str, value: float) -> FloatSpinBox:
    box = FloatSpinBox(name=name, label=name, min=-1000.0, max=100000.0, step=0.1)
    box.native.setDecimals(4)  # before the value: two decimals would turn w_syn 0.275 into 0.28
    box.value = value
    return box
