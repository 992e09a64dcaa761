"""The emulation dock widget on the mini-brain sample: click two neurons, run, step the
animation, see the stimulated neurons flash where they are, read the raster, export a movie;
and the bad inputs of the issue, each with a message and nothing lost."""

from __future__ import annotations

import os

import imageio_ffmpeg
import numpy as np
import pytest

from napari_wbe.emulation import ModelParams
from napari_wbe.emulation.activity import VOLTAGE
from napari_wbe.project import project_from_layer_data
from napari_wbe.widgets.emulation import PLAY, EmulationWidget

from .conftest import SCREENSHOTS, click, not_blank, save_screenshot


@pytest.fixture
def sample(viewer):
    viewer.open_sample("napari-wbe", "mini-brain")
    labels = viewer.layers["mini-brain labels"]
    widget = EmulationWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Emulate")
    widget.reset_choices()
    widget.neuron_layer.value = labels
    return widget, labels


def click_neuron(viewer, labels, neuron):
    inside = np.argwhere(labels.data == neuron)
    voxel = inside[len(inside) // 2]
    viewer.dims.set_point(0, voxel[0] * labels.scale[0])
    click(viewer, labels, voxel)
    return voxel


def finish(qtbot, widget):
    qtbot.waitUntil(lambda: widget.run_button.enabled and not widget.status.bar.visible, timeout=60_000)


def test_click_run_animate_and_export(sample, viewer, qtbot, tmp_path):
    widget, labels = sample
    assert widget.model_params() == ModelParams()  # the reference model's values, unrounded
    biggest = np.bincount(labels.data.ravel())[1:].argsort()[::-1][:2] + 1  # big neurons show well
    for neuron in biggest:
        voxel = click_neuron(viewer, labels, int(neuron))
    assert widget.picker.stimulus() == {int(n): 150.0 for n in biggest}
    widget.duration.value = 300
    widget.run_button.native.click()
    finish(qtbot, widget)
    assert widget.result is not None, widget.status.text
    widget.controls.pause()
    assert widget.tabs.currentIndex() == PLAY and not labels.visible
    activity = widget.shown.layer
    np.testing.assert_array_equal(activity.data[0][labels.data == 0], 0)
    saved = project_from_layer_data([layer.as_layer_data_tuple() for layer in viewer.layers])
    assert labels.name in saved.labels and activity.name not in saved.labels  # display only

    # the raster: the stimulated neurons on top, every one of their spikes drawn
    result, stimulated = widget.result, [int(n) for n in biggest]
    first_rows = widget.raster.axes.get_yticklabels()[:2]
    assert [int(t.get_text()) for t in first_rows] == stimulated
    drawn = widget.raster.axes.collections[0].get_offsets()
    assert len(drawn) == int(result.spikes["neuron"].isin(stimulated).sum()) + int(
        (~result.spikes["neuron"].isin(stimulated)).sum())
    assert len(result.spikes[result.spikes["neuron"] == stimulated[0]]) > 10

    # a spike frame and a quiet frame of the first stimulated neuron differ where it is
    frames = widget.controls.frames
    index = int(np.flatnonzero(result.neuron_ids == stimulated[0])[0])
    brightness = np.array([frames.values(f)[index] for f in range(frames.n_frames)])
    spike, quiet = int(brightness.argmax()), int(brightness.argmin())
    assert brightness[spike] == 1.0 and brightness[quiet] < 0.2
    viewer.dims.set_point(0, voxel[0] * labels.scale[0])
    widget.controls.slider.value = spike
    at_spike = viewer.screenshot(canvas_only=True, flash=False).astype(int)
    widget.controls.slider.value = quiet
    at_quiet = viewer.screenshot(canvas_only=True, flash=False).astype(int)
    assert widget.raster.cursor.get_xdata()[0] == pytest.approx(frames.time_ms(quiet))
    assert widget.controls.time.value == f"t = {frames.time_ms(quiet):.1f} ms"
    only = np.zeros((len(result.neuron_ids) + 1, 4), np.float32)
    only[index + 1] = 1.0  # the neuron alone, opaque white: where it is on screen
    widget._painter()(only)
    where = viewer.screenshot(canvas_only=True, flash=False)[..., :3].min(axis=-1) > 250
    changed = np.abs(at_spike - at_quiet)[..., :3].sum(axis=-1) > 60
    assert where.sum() > 200 and changed[where].mean() > 0.5
    assert changed[~where].mean() < changed[where].mean() / 5

    # an edit of the labels (a merge, a paint) redoes the index volume at the next run
    widget.run_button.native.click()
    finish(qtbot, widget)
    assert widget.shown.layer is activity  # unchanged labels: the same activity layer
    labels.data[labels.data == stimulated[1]] = stimulated[0]
    labels.events.data()
    widget.run_button.native.click()
    finish(qtbot, widget)
    widget.controls.pause()
    assert widget.shown.layer is not activity and activity not in viewer.layers
    gone = int(np.flatnonzero(result.neuron_ids == stimulated[1])[0]) + 1
    assert not (widget.shown.layer.data[0] == gone).any() and widget.shown.missing == 1
    activity = widget.shown.layer
    frames = widget.controls.frames

    # in 3D, the same activity layer, no new layer
    viewer.dims.ndisplay = 3
    widget.controls.slider.value = spike
    assert not_blank(viewer.screenshot(canvas_only=True, flash=False))
    viewer.dims.ndisplay = 2

    # membrane potential colouring, from the traces kept for this small circuit
    widget.controls.mode.value = VOLTAGE
    assert widget.controls.frames.mode == VOLTAGE
    widget.controls.mode.value = widget.controls.mode.choices[0]

    # an export stopped halfway leaves no file behind
    widget.controls.frame_ms.value = 1.0
    widget.controls.movie.value = tmp_path / "stopped.mp4"
    widget.controls.export_button.native.click()
    qtbot.waitUntil(lambda: widget.controls.frame > 20, timeout=30_000)
    widget.controls.export_button.native.click()
    assert "stopped" in widget.status.text and not (tmp_path / "stopped.mp4").exists()
    assert widget.controls.export_button.text == "Export movie" and widget.controls.play_button.enabled

    # movie export: every frame, the canvas size
    widget.controls.frame_ms.value = 10.0
    widget.controls.movie.value = tmp_path / "activity.mp4"
    widget.controls.export_button.native.click()
    qtbot.waitUntil(lambda: widget.controls.export_button.text == "Export movie", timeout=60_000)
    n_frames = widget.controls.frames.n_frames
    assert "Wrote" in widget.status.text, widget.status.text
    assert imageio_ffmpeg.count_frames_and_secs(str(tmp_path / "activity.mp4"))[0] == n_frames == 31
    meta = next(imageio_ffmpeg.read_frames(str(tmp_path / "activity.mp4")))
    height, width = viewer.screenshot(canvas_only=True, flash=False).shape[:2]
    assert tuple(meta["size"]) == (width // 2 * 2, height // 2 * 2)
    if SCREENSHOTS:
        readme_pictures(viewer, widget, qtbot)


def readme_pictures(viewer, widget, qtbot):
    """The README's screenshot and gif: a cell type stimulated, its circuit firing in 3D."""
    widget.picker.clear()
    widget.picker.search.value = "T2"
    widget.picker.add_button.native.click()
    widget.duration.value = 250
    widget.tabs.setCurrentIndex(0)
    save_screenshot(viewer.screenshot(canvas_only=False, flash=False), "emulation_setup.png")
    widget.run_button.native.click()
    finish(qtbot, widget)
    widget.controls.pause()
    for name in ("mini-brain EM", "synapses"):
        viewer.layers[name].visible = False
    viewer.dims.ndisplay = 3
    viewer.reset_view()
    viewer.scene.camera.angles = (-15, 30, 110)
    viewer.scene.camera.zoom *= 0.75
    frames = widget.controls.frames
    busiest = int(np.argmax([frames.values(f).sum() for f in range(frames.n_frames)]))
    widget.controls.show(busiest)
    save_screenshot(viewer.screenshot(canvas_only=False, flash=False), "emulation_widget.png")
    widget.controls.frame_ms.value = 4.0
    widget.controls.movie.value = os.path.join(os.path.abspath(SCREENSHOTS), "emulation.gif")
    widget.controls.export_button.native.click()
    qtbot.waitUntil(lambda: widget.controls.export_button.text == "Export movie", timeout=120_000)


def test_bad_input_says_what_and_keeps_everything(sample, viewer, qtbot, tmp_path):
    widget, labels = sample
    before = labels.data.copy()
    widget.run_button.native.click()  # nothing picked
    assert "Nothing to stimulate" in widget.status.text and widget.result is None

    widget.picker.search.value = "99999"
    widget.picker.add_button.native.click()
    assert "Not in the connectome" in widget.status.text

    kind = str(labels.features["cell_type"].iloc[0])
    widget.picker.search.value = kind
    widget.picker.add_button.native.click()
    assert set(widget.picker.stimulus()) == set(labels.features.loc[labels.features["cell_type"] == kind, "index"])

    # labels whose ids are not the connectome's
    cx = labels.metadata["napari_wbe"]["connectome"]
    shifted = viewer.add_labels(np.where(labels.data > 0, labels.data + 1000, 0), name="other ids",
                                metadata={"napari_wbe": {"connectome": cx}})
    widget.reset_choices()
    widget.neuron_layer.value = shifted
    widget.picker.search.value = kind
    widget.picker.add_button.native.click()
    widget.duration.value = 50
    widget.run_button.native.click()
    widget.run()  # a second run while the first is going
    assert "already going" in widget.status.text
    finish(qtbot, widget)
    assert "do not match" in widget.status.text and widget.result is None
    assert not any(layer.name.endswith("activity") for layer in viewer.layers)

    # an unwritable movie path, before any frame
    widget.neuron_layer.value = labels
    widget.picker.search.value = kind
    widget.picker.add_button.native.click()
    widget.run_button.native.click()
    finish(qtbot, widget)
    widget.controls.pause()
    for bad, words in ((tmp_path / "missing" / "a.mp4", "does not exist"), (tmp_path / "a.avi", ".mp4 or .gif")):
        widget.controls.movie.value = bad
        widget.controls.export_button.native.click()
        assert words in widget.status.text and widget.controls.export_button.enabled
    np.testing.assert_array_equal(labels.data, before)


def test_points_connectome_animates_as_points(viewer, qtbot):
    from napari_wbe.connectome_layout import graph_layout
    from napari_wbe.layer_data import features_for_layer
    from napari_wbe.phantom import mini_brain

    cx = mini_brain(n_neurons=20, shape=(24, 96, 96), seed=1).connectome
    cx.neurons["name"] = [f"N{i}" for i in cx.neurons.index]
    positions = graph_layout(cx).round()  # on whole slices, where a 2D click finds them
    points = viewer.add_points(positions.to_numpy(), features=features_for_layer(cx.neurons), size=3,
                               name="worm-like", metadata={"napari_wbe": {"connectome": cx}})
    widget = EmulationWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Emulate")
    widget.reset_choices()
    widget.neuron_layer.value = points
    first = positions.to_numpy()[0]
    viewer.dims.set_point(0, first[0])  # the point's slice
    click(viewer, points, first)
    assert list(widget.picker.stimulus()) == [int(cx.neurons.index[0])]
    widget.picker.search.value = "n2 N3 nobody"  # names (like the worm's ASHL), any case
    widget.picker.add_button.native.click()
    assert "'nobody'" in widget.status.text
    assert sorted(widget.picker.stimulus()) == [int(cx.neurons.index[0]), 2, 3]
    widget.picker.clear()
    widget.picker.add([int(cx.neurons.index[0])])
    widget.duration.value = 100
    widget.run_button.native.click()
    finish(qtbot, widget)
    widget.controls.pause()
    shown = widget.shown.layer
    assert len(shown.data) == len(cx.neurons)
    colours = []
    for frame in range(widget.controls.frames.n_frames):
        widget.controls.show(frame)
        colours.append(np.asarray(shown.face_color)[0].copy())
    assert np.ptp(np.array(colours)[:, 0]) > 0.3  # the stimulated point flashes


def test_top_neurons_sweep_trials_and_cancel(sample, viewer, qtbot, tmp_path):
    widget, labels = sample
    cx = labels.metadata["napari_wbe"]["connectome"]
    hub = int(cx.edges.groupby("pre")["syn_count"].sum().idxmax())
    target = int(cx.edges[cx.edges["pre"] == hub].sort_values("syn_count")["post"].iloc[-1])
    widget.picker.add([hub])
    widget.picker.role.value = "read out"
    click_neuron(viewer, labels, target)
    assert widget.picker.readout() == [target] and list(widget.picker.stimulus()) == [hub]
    widget.duration.value, widget.trials.value = 200, 3
    widget.run_button.native.click()
    finish(qtbot, widget)
    widget.controls.pause()

    top = widget.top.frame  # most active first, mean and SD over the 3 trials
    assert top["neuron"].iloc[0] == hub and top["mean_hz"].is_monotonic_decreasing
    assert {"type", "role", "sd_hz"} <= set(top.columns) and top.loc[0, "role"] == "stimulated"
    widget.top.selectRow(0)
    assert labels.selected_label == hub and f"Neuron {hub}" in widget.status.text

    widget.controls.trial.value = 2  # another trial: its own raster and frames
    assert widget.controls.frames.trial == 2 and "trial 2" in widget.raster.axes.get_title()
    widget.raster._on_seek(100.0)  # a click on the raster moves the animation there
    assert widget.controls.frames.time_ms(widget.controls.frame) == pytest.approx(100.0)

    widget.sweep_rates.value = "0 100 200"
    widget.sweep_button.native.click()
    finish(qtbot, widget)
    line = widget.sweep.axes.containers[0].lines[0]  # the errorbar's data line
    assert list(line.get_xdata()) == [0, 100, 200] and line.get_ydata()[0] <= line.get_ydata()[-1]

    viewer.dims.ndisplay = 3  # a turning-camera gif of a few frames
    widget.turn.value = True
    widget.controls.frame_ms.value = 50.0
    widget.controls.movie.value = tmp_path / "turn.gif"
    angles = viewer.scene.camera.angles
    widget.controls.export_button.native.click()
    qtbot.waitUntil(lambda: widget.controls.export_button.text == "Export movie", timeout=60_000)
    assert (tmp_path / "turn.gif").exists() and viewer.scene.camera.angles != angles

    widget.duration.value = 200_000  # long enough to cancel
    widget.run_button.native.click()
    widget.cancel.native.click()
    finish(qtbot, widget)
    assert widget.status.text == "Cancelled." and widget.result.duration_ms == 200
