"""The project dock widget: save all layers, clear, open again: the session comes back."""

from __future__ import annotations

import numpy as np

from napari_wbe.widgets.project import ProjectWidget


def test_save_and_reopen_the_sample_session(viewer, qtbot, tmp_path):
    viewer.open_sample("napari-wbe", "mini-brain")
    labels = viewer.layers["mini-brain labels"]
    labels.features["proofread"] = labels.features["index"] % 2 == 0  # something the user added
    before = {layer.name: (type(layer).__name__, np.asarray(layer.data).copy()) for layer in viewer.layers}

    widget = ProjectWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Project")
    widget.folder.value = tmp_path / "session.wbe"
    widget.save_button.native.click()
    qtbot.waitUntil(lambda: not widget.status.bar.visible, timeout=30_000)
    assert widget.status.text.startswith("Saved"), widget.status.text

    viewer.layers.clear()
    widget.open_button.native.click()
    qtbot.waitUntil(lambda: len(viewer.layers) == 3, timeout=30_000)
    for name, (kind, data) in before.items():
        layer = viewer.layers[name]
        assert type(layer).__name__ == kind
        np.testing.assert_array_equal(np.asarray(layer.data), data)
        np.testing.assert_allclose(layer.scale, (8, 8, 8))
    reopened = viewer.layers["mini-brain labels"]
    assert reopened.features["proofread"].tolist() == (reopened.features["index"] % 2 == 0).tolist()
    assert reopened.metadata["napari_wbe"]["connectome"].edges["syn_count"].sum() == len(before["synapses"][1])


def test_saving_into_a_foreign_folder_is_refused_in_the_widget(viewer, qtbot, tmp_path):
    viewer.add_image(np.zeros((4, 8, 8), np.uint8), name="em")
    (tmp_path / "thesis").mkdir()
    (tmp_path / "thesis" / "chapter.tex").write_text("keep me")
    widget = ProjectWidget(viewer)
    widget.folder.value = tmp_path / "thesis"
    widget.save_button.native.click()
    qtbot.waitUntil(lambda: "not a napari-wbe project" in widget.status.text, timeout=10_000)
    assert sorted(p.name for p in (tmp_path / "thesis").iterdir()) == ["chapter.tex"]
