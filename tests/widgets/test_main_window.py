"""The `napari-wbe` command's window: the sample at its true scale, the widgets docked."""

from __future__ import annotations

import numpy as np

from napari_wbe.__main__ import parse_args, set_up_viewer

from .conftest import not_blank, save_screenshot


def test_sample_session_is_drawn_at_true_scale(viewer, qtbot):
    set_up_viewer(viewer)
    names = [layer.name for layer in viewer.layers]
    assert names == ["mini-brain EM", "mini-brain labels", "synapses"]
    for layer in viewer.layers:
        np.testing.assert_allclose(layer.scale, (8.0, 8.0, 8.0))
    labels = viewer.layers["mini-brain labels"]
    assert labels.features["index"].min() >= 1 and "nt" in labels.features
    assert labels.metadata["napari_wbe"]["connectome"].edges["syn_count"].sum() == len(viewer.layers["synapses"].data)
    viewer.reset_view()
    qtbot.wait(50)
    # the first tab is in front: only its widget has pixels on screen
    on_screen = {name: lambda w=widget: not w.native.visibleRegion().isEmpty()
                 for name, widget in viewer.window.dock_widgets.items()}
    qtbot.waitUntil(on_screen["Load volume (napari-wbe)"])
    assert not on_screen["Proofread (napari-wbe)"]()
    canvas = viewer.screenshot(canvas_only=True, flash=False)
    assert not_blank(canvas)
    save_screenshot(viewer.screenshot(canvas_only=False, flash=False), "main_window.png")


def test_sample_in_3d(viewer, qtbot):
    viewer.open_sample("napari-wbe", "mini-brain-labels")
    viewer.dims.ndisplay = 3
    viewer.reset_view()
    qtbot.wait(50)
    assert not_blank(viewer.screenshot(canvas_only=True, flash=False))


def test_exm_sample_is_one_layer_per_tag(viewer, qtbot):
    viewer.open_sample("napari-wbe", "mini-brain-exm")
    assert len(viewer.layers) == 18
    assert sum(layer.visible for layer in viewer.layers) == 3
    viewer.reset_view()
    qtbot.wait(50)
    assert not_blank(viewer.screenshot(canvas_only=True, flash=False))
    save_screenshot(viewer.screenshot(canvas_only=True, flash=False), "exm_sample.png")


def test_command_line_arguments():
    args = parse_args(["a.zarr", "--no-sample"])
    assert args.paths == ["a.zarr"] and args.no_sample
