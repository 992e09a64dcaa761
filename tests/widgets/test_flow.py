"""One napari session from raw ExM channels to an animated emulation, every widget on the
same layers: decode -> proofread -> connectome -> emulate -> save -> reopen. Per-neuron facts
gathered on the way accumulate in the decoded Labels layer's `features`."""

from __future__ import annotations

import numpy as np
import pytest

from napari_wbe.layer_data import WBE_KEY
from napari_wbe.proofreading import replay
from napari_wbe.widgets.barcodes import LABELS, BarcodeWidget
from napari_wbe.widgets.connectivity import ConnectivityWidget
from napari_wbe.widgets.emulation import EmulationWidget
from napari_wbe.widgets.project import ProjectWidget
from napari_wbe.widgets.proofreading import ProofreadingWidget

pytestmark = pytest.mark.slow


def dock(viewer, widget, name):
    viewer.window.add_dock_widget(widget, name=name)
    widget.reset_choices()
    return widget


def idle(qtbot, widget, timeout=120_000):
    qtbot.waitUntil(lambda: not widget.status.bar.visible, timeout=timeout)


def test_from_barcodes_to_an_animated_emulation_and_back(viewer, qtbot, tmp_path):
    viewer.open_sample("napari-wbe", "mini-brain-exm")
    viewer.open_sample("napari-wbe", "mini-brain")
    truth, synapses, em = (viewer.layers[n] for n in ("mini-brain labels", "synapses", "mini-brain EM"))
    viewer.dims.axis_labels = ("z", "y", "x")

    barcodes = dock(viewer, BarcodeWidget(viewer), "Decode barcodes")
    barcodes.decode_button.native.click()
    qtbot.waitUntil(lambda: LABELS in viewer.layers and barcodes.decode_button.enabled, timeout=180_000)
    decoded = viewer.layers[LABELS]
    assert "barcode" in decoded.features, barcodes.status.text

    proof = dock(viewer, ProofreadingWidget(viewer), "Proofread")
    proof.labels_layer.value, proof.image_layer.value, proof.truth_layer.value = decoded, em, truth
    proof.log_file.value = tmp_path / "edits.wbelog"
    before_edits = np.asarray(decoded.data).copy()
    proof.start_button.native.click()
    proof.find_button.native.click()
    qtbot.waitUntil(lambda: proof.queue.rowCount() > 0, timeout=60_000)
    for _ in range(3):
        proof.accept_button.native.click()
    kept = int(proof.editor.history[-1]["labels"][0])
    proof.selected = [kept]
    proof.proofread_button.native.click()
    assert decoded.features.set_index("index").loc[kept, "proofread"]

    links = dock(viewer, ConnectivityWidget(viewer), "Connectivity")
    links.labels_layer.value, links.synapse_layer.value = decoded, synapses
    links.build_button.native.click()
    idle(qtbot, links)
    cx = decoded.metadata[WBE_KEY]["connectome"]
    features = decoded.features.set_index("index")
    assert {"barcode", "proofread", "nt"} <= set(features.columns), links.status.text
    assert features.loc[kept, "proofread"] and set(cx.neurons.index) <= set(features.index)
    assert len(cx.edges) > 0

    emulate = dock(viewer, EmulationWidget(viewer), "Emulate")
    emulate.neuron_layer.value = decoded
    hubs = cx.edges.groupby("pre")["syn_count"].sum().sort_values().index[-3:]
    emulate.picker.add(list(hubs))
    emulate.duration.value = 200
    emulate.run_button.native.click()
    idle(qtbot, emulate)
    emulate.controls.pause()
    assert emulate.result is not None and emulate.shown.missing == 0, emulate.status.text
    assert emulate.shown.layer.metadata[WBE_KEY]["source"] == decoded.name

    project = dock(viewer, ProjectWidget(viewer), "Project")
    project.folder.value = tmp_path / "session.wbe"
    project.save_button.native.click()
    idle(qtbot, project)
    assert project.status.text.startswith("Saved"), project.status.text
    edited = np.asarray(decoded.data).copy()
    viewer.layers.clear()
    project.open_button.native.click()
    idle(qtbot, project)
    assert LABELS in viewer.layers, (project.status.text, [layer.name for layer in viewer.layers])
    reopened = viewer.layers[LABELS]
    np.testing.assert_array_equal(reopened.data, edited)
    again = reopened.features.set_index("index")
    assert again.loc[kept, "proofread"] and {"barcode", "nt"} <= set(again.columns)
    assert reopened.metadata[WBE_KEY]["connectome"].edges["syn_count"].sum() == cx.edges["syn_count"].sum()
    log = reopened.metadata[WBE_KEY]["edit_log"]  # the edit log came along, and still replays
    np.testing.assert_array_equal(replay(before_edits, log), edited)
