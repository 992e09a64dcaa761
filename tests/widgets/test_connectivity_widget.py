"""The connectivity dock widget on the mini-brain sample: build the connectome from labels
and synapse points, click a neuron, see its partners lit, in the table and the matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_wbe.widgets.connectivity import DIMMED, HIDE, LINES, SELECTED_COLOUR, ConnectivityWidget

from .conftest import click, not_blank, save_screenshot


def test_build_click_and_explore(viewer, qtbot, tmp_path):
    viewer.open_sample("napari-wbe", "mini-brain")
    labels, synapses = viewer.layers["mini-brain labels"], viewer.layers["synapses"]
    truth = labels.metadata["napari_wbe"]["connectome"].edges.copy()
    labels.features["note"] = "kept"  # a user column survives the rebuild
    widget = ConnectivityWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Connectivity")
    widget.reset_choices()
    widget.labels_layer.value, widget.synapse_layer.value = labels, synapses
    widget.build_button.native.click()
    qtbot.waitUntil(lambda: not widget.status.bar.visible, timeout=30_000)
    built = labels.metadata["napari_wbe"]["connectome"]
    key = ["pre", "post"]
    pd.testing.assert_frame_equal(built.edges.sort_values(key)[key + ["syn_count"]].reset_index(drop=True),
                                  truth.sort_values(key)[key + ["syn_count"]].reset_index(drop=True))
    assert (labels.features["note"] == "kept").all() and "nt" in labels.features

    hub = int(built.edges.groupby("pre")["syn_count"].sum().idxmax())
    colour_before = labels.get_color(hub)
    inside = np.argwhere(labels.data == hub)[0]
    viewer.dims.set_point(0, inside[0] * labels.scale[0])
    widget.min_syn.value = 1
    click(viewer, labels, inside)
    assert widget.selected_id() == hub
    table = widget.table.frame
    expected = built.edges[(built.edges["pre"] == hub) | (built.edges["post"] == hub)]
    assert len(table) == len(expected) and set(table["direction"]) <= {"in", "out"}
    colours = labels.colormap.color_dict
    assert tuple(colours[hub]) == SELECTED_COLOUR and set(table["partner"]) <= set(colours)
    widget.min_syn.value = 50
    assert len(widget.table.frame) <= len(table)
    widget.min_syn.value = 1

    widget.lines.value = True
    assert len(viewer.layers[LINES].data) == len(table[table["partner"] != hub])
    assert widget.matrix.matrix.shape[0] == widget.matrix.matrix.shape[1] >= 2
    widget.table.selectRow(0)  # centres on that partner
    widget.export.value = tmp_path / "partners.csv"
    widget.export_button.native.click()
    assert len(pd.read_csv(tmp_path / "partners.csv")) == len(table)

    widget.others.value = HIDE  # in 3D the partners alone read best
    synapses.visible = viewer.layers["mini-brain EM"].visible = False
    viewer.dims.ndisplay = 3
    viewer.reset_view()
    viewer.scene.camera.angles = (-10, 35, 120)
    labels.opacity = 0.9
    qtbot.wait(100)
    assert not_blank(viewer.screenshot(canvas_only=True, flash=False))
    save_screenshot(viewer.screenshot(canvas_only=False, flash=False), "connectivity_widget.png")
    widget.clear_button.native.click()
    assert LINES not in viewer.layers
    np.testing.assert_allclose(labels.get_color(hub), colour_before)


def test_celegans_points_explored_like_labels(viewer, qtbot):
    from napari_wbe.connectome_celegans import installed_data_file

    if installed_data_file() is None:
        pytest.skip("c302's data file is not installed (pip install --no-deps c302==0.12.1)")
    viewer.open_sample("napari-wbe", "celegans")
    points = viewer.layers["C. elegans neurons"]
    cx = points.metadata["napari_wbe"]["connectome"]
    widget = ConnectivityWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Connectivity")
    widget.reset_choices()
    widget.labels_layer.value = points
    assert "448 neurons" in widget.summary.value
    names = cx.neurons["name"]
    avb = int(names.index[names == "AVBL"][0])
    viewer.dims.ndisplay = 3
    row = int(np.flatnonzero(points.features["index"].to_numpy() == avb)[0])
    widget._clicked(points, None, row)  # what a click on that point hands over
    assert widget.selected_id() == avb
    table = widget.table.frame
    assert len(table) and set(table["kind"]) <= {"chemical", "electrical"}
    colours = points.face_color
    assert np.allclose(colours[row], SELECTED_COLOUR)
    assert np.isclose(colours[:, 3], DIMMED[3]).sum() == len(points.data) - 1 - table["partner"].nunique()
    widget.lines.value = True
    assert LINES in viewer.layers
    viewer.reset_view()
    save_screenshot(viewer.screenshot(canvas_only=False, flash=False), "connectivity_celegans.png")
