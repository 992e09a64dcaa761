"""The barcode dock widget: prepare, preview, decode, errors and cancel, in a real viewer."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from napari_wbe.barcodes import Decoder, decode
from napari_wbe.layer_data import CHANNEL_COLORMAPS, WBE_KEY
from napari_wbe.phantom import mini_brain
from napari_wbe.widgets.barcodes import CONFIDENCE, LABELS, PREVIEW, BarcodeWidget

from .conftest import not_blank, save_screenshot

pytestmark = pytest.mark.gui
N_CHANNELS = 10


@lru_cache(maxsize=1)
def _phantom():
    return mini_brain(n_neurons=20, shape=(24, 96, 96), n_channels=N_CHANNELS, seed=0, anisotropy=2.5)


def _add_channels(viewer, mb):
    """One layer per tag, as napari makes them from an ExM stack opened with channel_axis."""
    viewer.add_image(mb.barcode_image, channel_axis=0, name=mb.channel_names, scale=mb.voxel_size,
                     colormap=[CHANNEL_COLORMAPS[i % len(CHANNEL_COLORMAPS)] for i in range(N_CHANNELS)],
                     blending="additive", visible=[i < 3 for i in range(N_CHANNELS)],
                     metadata={WBE_KEY: {"kind": "exm"}})
    viewer.dims.axis_labels = ("z", "y", "x")


def _widget(viewer) -> BarcodeWidget:
    widget = BarcodeWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Decode barcodes")
    return widget


def _wait(widget, qtbot, timeout=60_000):
    qtbot.waitUntil(lambda: widget.decode_button.enabled, timeout=timeout)


def _agreement(labels: np.ndarray, truth: np.ndarray) -> float:
    """Share of truth-foreground voxels inside a label whose majority truth neuron is theirs."""
    inside = truth > 0
    pairs = pd.DataFrame({"label": labels[inside], "truth": truth[inside]})
    majority = pairs[pairs["label"] > 0].groupby("label")["truth"].agg(lambda t: t.value_counts().index[0])
    assigned = pairs["label"].map(majority)
    return float((assigned == pairs["truth"]).mean())


def test_prepare_preview_and_decode_the_volume(viewer, qtbot):
    mb = _phantom()
    _add_channels(viewer, mb)
    widget = _widget(viewer)
    assert widget.channels.value == mb.channel_names  # the ExM layers, in layer order

    widget.prepare_button.native.click()
    _wait(widget, qtbot)
    n_codes = len(widget._decoder.codebook)  # learned: a rare neuron's code may go unseen
    assert 0 < n_codes <= len(mb.codebook) and widget.codes.value.startswith(f"{n_codes} codes")
    assert widget.histograms.n_panels == N_CHANNELS and widget.histograms.height() > 0
    assert widget.histograms.thresholds.shape == (N_CHANNELS,)

    preview = viewer.layers[PREVIEW]
    assert preview.data.shape == (1,) + mb.barcode_image.shape[2:]
    viewer.dims.set_current_step(0, 12)
    widget.similarity.value = 0.6
    qtbot.waitUntil(lambda: widget._shown == (12, widget.foreground.value, widget.similarity.value), timeout=2_000)
    loose = int((preview.data > 0).sum())
    np.testing.assert_allclose(preview.translate, (12 * mb.voxel_size[0], 0, 0))
    widget.similarity.value = 0.95
    qtbot.waitUntil(lambda: widget._shown[2] == widget.similarity.value, timeout=2_000)
    strict = int((preview.data > 0).sum())
    assert loose > strict > 0

    widget.decode_button.native.click()
    _wait(widget, qtbot)
    labels = viewer.layers[LABELS]
    assert type(labels).__name__ == "Labels", widget.status.text
    np.testing.assert_allclose(labels.scale, mb.voxel_size)
    features = labels.features
    assert "index" in features and {"barcode", "name", "n_voxels"} <= set(features)
    assert sorted(features["index"]) == sorted(set(np.unique(labels.data)) - {0})
    meta = labels.metadata[WBE_KEY]
    assert meta["kind"] == "labels" and meta["decode_report"]["n_labels"] == len(features)
    assert list(meta["codebook"].columns[:3]) == ["name", "id", "bit1"]
    confidence = viewer.layers[CONFIDENCE]
    assert confidence.data.shape == labels.data.shape and tuple(confidence.contrast_limits) == (0.0, 1.0)
    assert not viewer.layers[PREVIEW].visible
    assert _agreement(np.asarray(labels.data), mb.labels) > 0.85
    assert widget.status.text.startswith(f"Decoded {len(features)} labels")
    # what a script gets with the same steps: the widget adds nothing of its own
    scripted = Decoder(list(mb.barcode_image)).with_options(min_similarity=0.95).run()
    np.testing.assert_array_equal(labels.data, scripted.labels)



@pytest.mark.slow
def test_the_exm_sample_end_to_end_with_previews(viewer, qtbot):
    from napari_wbe._sample_data import _phantom as sample_phantom

    viewer.open_sample("napari-wbe", "mini-brain-exm")
    viewer.dims.axis_labels = ("z", "y", "x")
    widget = _widget(viewer)
    assert len(widget.channels.value) == 18
    widget.prepare_button.native.click()
    _wait(widget, qtbot)
    assert widget.histograms.n_panels == 18, widget.status.text
    qtbot.wait(100)
    # every slider move shows that slice decoded at those values (its speed: bench_barcodes.py)
    for z, similarity in [(5, 0.7), (20, 0.75), (30, 0.9), (40, 0.6), (47, 0.85)]:
        viewer.dims.set_current_step(0, z)
        widget.similarity.value = similarity
        widget.update_preview()
        preview = viewer.layers[PREVIEW]
        expected = widget._decoder.with_options(foreground_threshold=widget.foreground.value,
                                                min_similarity=similarity).preview(z)["code"]
        np.testing.assert_array_equal(preview.data[0], expected)
        assert preview.translate[0] == pytest.approx(z * preview.scale[0]) and preview.visible

    widget.decode_button.native.click()
    _wait(widget, qtbot)
    labels = viewer.layers[LABELS]
    assert labels.data.shape == sample_phantom().labels.shape and len(labels.features) > 0
    viewer.dims.set_current_step(0, 24)
    viewer.reset_view()
    qtbot.wait(100)
    assert not_blank(viewer.screenshot(canvas_only=True, flash=False))
    save_screenshot(viewer.screenshot(canvas_only=False, flash=False), "barcode_widget.png")


def test_a_4d_layer_and_decode_without_prepare(viewer, qtbot):
    mb = _phantom()
    z, y, x = mb.voxel_size
    viewer.add_image(np.moveaxis(mb.barcode_image, 0, 1), name="stack", scale=(z, 1, y, x))  # (z, c, y, x)
    widget = _widget(viewer)
    assert widget.channels.value == []  # not an ExM layer by its metadata: the user picks it
    widget.channels.value = ["stack"]
    widget.channel_axis.value = 1
    widget.decode_button.native.click()
    _wait(widget, qtbot)
    np.testing.assert_allclose(viewer.layers[LABELS].scale, mb.voxel_size)
    assert widget.histograms.n_panels == N_CHANNELS
    scripted = decode(np.moveaxis(mb.barcode_image, 0, 1), channel_axis=1)  # the same defaults, one call
    np.testing.assert_array_equal(viewer.layers[LABELS].data, scripted.labels)


def test_a_codebook_with_the_wrong_bit_count_is_an_error_in_red(viewer, qtbot, tmp_path):
    _add_channels(viewer, _phantom())
    widget = _widget(viewer)
    path = tmp_path / "codebook.csv"
    pd.DataFrame({"name": ["a", "b"], "id": [1, 2]} | {f"bit{i + 1}": [i % 2, 1] for i in range(8)}).to_csv(
        path, index=False)
    widget.codebook.value = "from a file"
    widget.codebook_file.value = path
    n_layers = len(viewer.layers)
    widget.prepare_button.native.click()
    _wait(widget, qtbot)
    assert "8 bits" in widget.status.text and "10 tag channels" in widget.status.text
    assert "ff6b6b" in widget.status.message.native.styleSheet()
    assert len(viewer.layers) == n_layers


@pytest.mark.parametrize("field, text, message", [
    ("reference", "0, 12", "out of range"),
    ("reference", "zero", "whole numbers"),
    ("channels", [], "Pick the barcode channels"),
])
def test_bad_input_is_named_and_nothing_is_added(viewer, qtbot, field, text, message):
    _add_channels(viewer, _phantom())
    widget = _widget(viewer)
    if field == "reference":
        widget.rounds.value = ",".join(["0"] * N_CHANNELS)
    getattr(widget, field).value = text
    n_layers = len(viewer.layers)
    widget.decode_button.native.click()
    _wait(widget, qtbot)
    assert message in widget.status.text
    assert "ff6b6b" in widget.status.message.native.styleSheet()
    assert len(viewer.layers) == n_layers


def test_nans_are_refused(viewer, qtbot):
    image = _phantom().barcode_image.astype(np.float32)
    image[3, 5, 5, 5] = np.nan
    viewer.add_image(image, channel_axis=0, name=[f"t{i}" for i in range(N_CHANNELS)],
                     metadata={WBE_KEY: {"kind": "exm"}})
    widget = _widget(viewer)
    widget.prepare_button.native.click()
    _wait(widget, qtbot)
    assert "NaN" in widget.status.text and len(viewer.layers) == N_CHANNELS


def test_cancel_stops_the_decode_and_adds_nothing(viewer, qtbot):
    _add_channels(viewer, _phantom())
    widget = _widget(viewer)
    widget.decode_button.native.click()
    widget.cancel.native.click()
    _wait(widget, qtbot)
    assert widget.status.text == "Cancelled."
    assert LABELS not in viewer.layers and CONFIDENCE not in viewer.layers
