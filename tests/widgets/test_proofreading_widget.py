"""The proofreading dock widget in a real viewer: clicks merge and split, paint strokes
are recorded, undo restores, the review queue flies to suspects and accepts them, the log
replays to what is on screen, and metrics follow every edit."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from napari.utils.interactions import mouse_press_callbacks, mouse_release_callbacks

from napari_wbe.phantom import mini_brain
from napari_wbe.proofreading import replay
from napari_wbe.widgets._layers import viewer_camera
from napari_wbe.widgets.proofreading import MERGE, PREVIEW, SEEDS, SPLIT, ProofreadingWidget

from .conftest import click, not_blank, save_screenshot


@pytest.fixture(scope="module")
def brain():
    return mini_brain(n_neurons=20, shape=(24, 96, 96), seed=0)


@pytest.fixture
def editing(viewer, brain, tmp_path):
    em = viewer.add_image(brain.em, name="em", scale=(8, 8, 8))
    truth = viewer.add_labels(brain.labels, name="truth", scale=(8, 8, 8), visible=False)
    fragments = viewer.add_labels(brain.fragments.copy(), name="fragments", scale=(8, 8, 8))
    widget = ProofreadingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Proofread")
    widget.reset_choices()
    widget.labels_layer.value, widget.image_layer.value, widget.truth_layer.value = fragments, em, truth
    widget.log_file.value = tmp_path / "edits.wbelog"
    widget.start_button.native.click()
    assert widget.status.text.startswith("Editing"), widget.status.text
    return widget, fragments


def pair_in_one_neuron(brain):
    f, t = brain.fragments, brain.labels
    a, b = f[:, :, :-1].ravel(), f[:, :, 1:].ravel()
    same = (a != b) & (a > 0) & (b > 0) & (t[:, :, :-1].ravel() == t[:, :, 1:].ravel())
    where = np.flatnonzero(same)[0]
    return int(a[where]), int(b[where])


def voxel_of(labels, label):
    inside = np.argwhere(labels == label)
    return inside[len(inside) // 2]


def test_click_merge_undo_and_paint(viewer, qtbot, brain, editing, tmp_path):
    widget, layer = editing
    a, b = pair_in_one_neuron(brain)
    widget.mode.value = MERGE
    viewer.dims.set_point(0, voxel_of(brain.fragments, a)[0] * 8)
    click(viewer, layer, voxel_of(brain.fragments, a))
    click(viewer, layer, voxel_of(brain.fragments, b))
    assert widget.selected == [a, b]
    vi_before = widget.metrics.value
    widget.merge_button.native.click()
    smaller = min((a, b), key=lambda i: (brain.fragments == i).sum())  # the bigger segment keeps its id
    assert not (layer.data == smaller).any() and "Merged" in widget.status.text
    assert widget.metrics.value != vi_before and "VI split" in widget.metrics.value
    merged = layer.data.copy()

    layer.selected_label = 99
    layer.paint((3, 40, 40), 99)  # napari's own brush: recorded through the paint event
    assert (layer.data == 99).any() and widget.editor.history[-1]["kind"] == "paint"
    history = widget.history_table.frame  # the edit history, newest first
    assert history["kind"].tolist() == ["paint", "merge"] and history["labels"].iloc[1] == (a, b)
    widget.history_table.selectRow(1)  # flies to the merged segment
    inside = np.argwhere(layer.data == widget.editor.history[0]["into"])
    middle = (inside.min(axis=0) + inside.max(axis=0) + 1) / 2 * 8
    np.testing.assert_allclose(viewer_camera(viewer).center[-2:], middle[1:])
    widget.undo_button.native.click()
    assert np.array_equal(layer.data, merged)
    widget.undo_button.native.click()
    assert np.array_equal(layer.data, brain.fragments)
    widget.redo_button.native.click()
    np.testing.assert_array_equal(replay(brain.fragments, tmp_path / "edits.wbelog"), layer.data)


def test_split_with_clicked_seeds_and_preview(viewer, qtbot, brain, editing):
    widget, layer = editing
    a, b = pair_in_one_neuron(brain)
    widget.editor.merge([a, b])
    widget.mode.value = SPLIT
    seed_a, seed_b = voxel_of(brain.fragments, a), voxel_of(brain.fragments, b)
    viewer.dims.set_point(0, seed_a[0] * 8)
    click(viewer, layer, seed_a)
    viewer.dims.set_point(0, seed_b[0] * 8)
    click(viewer, layer, seed_b, shift=True)
    assert widget.seeds == [[list(seed_a)], [list(seed_b)]] and SEEDS in viewer.layers
    widget.preview_button.native.click()
    assert PREVIEW in viewer.layers and set(np.unique(viewer.layers[PREVIEW].data)) == {0, 1, 2}
    widget.split_button.native.click()
    assert "Split" in widget.status.text and PREVIEW not in viewer.layers
    new = int(layer.data[tuple(seed_b)])
    assert new not in (0, a) and layer.data[tuple(seed_a)] == a


def test_review_queue_accepts_and_rejects(viewer, qtbot, brain, editing, tmp_path):
    widget, layer = editing
    widget.find_button.native.click()
    qtbot.waitUntil(lambda: widget.queue.rowCount() > 0, timeout=30_000)
    first = widget.queue.current()
    assert first["kind"] == "merge?"
    assert len(layer.colormap.color_dict) <= 4  # only the suspect's segments are shown
    np.testing.assert_allclose(viewer.scene.camera.center[-2:], (first["y"] * 8, first["x"] * 8))
    widget.accept_button.native.click()
    assert widget.editor.history[-1]["kind"] == "merge"
    shown = [tuple(labels) for labels in widget.queue.rows["labels"]]
    assert first["labels"] not in shown  # answered, and the queue re-ranked the rest
    assert all(i in widget.editor.boxes for pair in shown for i in pair)
    rejected = widget.queue.current()["labels"]
    widget.reject_button.native.click()
    assert rejected not in [tuple(labels) for labels in widget.queue.rows["labels"]]
    widget.selected = [int(first["labels"][0])]
    widget.proofread_button.native.click()
    assert layer.features.set_index("index").loc[int(first["labels"][0]), "proofread"]
    assert not_blank(viewer.screenshot(canvas_only=True, flash=False))
    save_screenshot(viewer.screenshot(canvas_only=False, flash=False), "proofreading_widget.png")
    widget.show_all_button.native.click()
    np.testing.assert_array_equal(replay(brain.fragments, tmp_path / "edits.wbelog"), layer.data)


def test_review_answers_are_edits_that_undo_takes_back(viewer, qtbot, brain, editing, tmp_path):
    widget, layer = editing
    widget.find_button.native.click()
    qtbot.waitUntil(lambda: widget.queue.rowCount() > 0, timeout=30_000)

    def shown():
        return [tuple(labels) for labels in widget.queue.rows["labels"]]

    rejected = tuple(widget.queue.current()["labels"])
    widget.reject_button.native.click()
    assert widget.editor.history[-1]["kind"] == "keep_apart" and rejected not in shown()
    widget.undo_button.native.click()  # a "no" by mistake: asked again, first as before, and shown
    assert widget.merge_queue.decisions() == 0 and shown()[0] == rejected
    assert tuple(widget.queue.current()["labels"]) == rejected
    widget.redo_button.native.click()
    assert widget.merge_queue.decisions() == 1 and rejected not in shown()
    merged = tuple(widget.queue.current()["labels"])
    widget.accept_button.native.click()
    widget.undo_button.native.click()  # the merge is undone in the labels and in the queue
    np.testing.assert_array_equal(layer.data, brain.fragments)
    assert widget.merge_queue.mapping(merged).tolist() == list(merged) and merged in shown()
    widget.redo_button.native.click()
    into = widget.merge_queue.segment_of(merged[0])
    assert widget.merge_queue.segment_of(merged[1]) == into and set(merged) & set(widget.editor.boxes) == {into}
    widget.find_button.native.click()  # a new queue (or one after a restart) keeps the "no"
    qtbot.waitUntil(lambda: "kept apart earlier" in widget.status.text, timeout=30_000)
    assert widget.merge_queue.decisions() == 1 and rejected not in shown()
    clicked = tuple(widget.queue.current()["labels"])
    widget.selected = list(clicked)  # merged by clicking, not from the row: the queue is told too
    widget.merge_button.native.click()
    into = widget.merge_queue.segment_of(clicked[1])
    assert widget.merge_queue.decisions() == 2 and set(clicked) & set(widget.editor.boxes) == {into}
    assert all(i in widget.editor.boxes for pair in shown() for i in pair)
    widget.undo_button.native.click()
    assert widget.merge_queue.decisions() == 1 and clicked in shown()
    widget.undo_button.native.click()  # the merge from before this queue: its segments wait for Find suspects
    assert not set(merged) & {i for pair in shown() for i in pair}
    widget.undo_button.native.click()  # the "no" from before this queue, told to it at Find suspects
    assert widget.merge_queue.decisions() == 0 and tuple(widget.queue.current()["labels"]) == rejected
    np.testing.assert_array_equal(replay(brain.fragments, tmp_path / "edits.wbelog"), layer.data)


def test_merge_rows_of_a_segment_split_by_hand_wait_for_find_suspects(viewer, qtbot, brain, editing):
    widget, layer = editing
    widget.find_button.native.click()
    qtbot.waitUntil(lambda: widget.queue.rowCount() > 0, timeout=30_000)
    label = int(widget.queue.rows[widget.queue.rows["kind"] == "merge?"]["labels"].iloc[0][0])
    inside = np.argwhere(layer.data == label)
    widget.begin_split(label)
    widget.add_seed(inside[0], part=0)
    widget.add_seed(inside[-1], part=1)
    widget.split_button.native.click()
    assert widget.editor.history[-1]["kind"] == "split"
    merges = widget.queue.rows[widget.queue.rows["kind"] == "merge?"]
    assert len(merges) and not any(label in pair for pair in merges["labels"])  # its contacts changed
    widget.undo_button.native.click()  # as it was when the queue measured it: its rows are back
    assert any(label in pair for pair in widget.queue.rows["labels"])


def test_a_hand_merge_of_three_segments_is_the_queues_and_a_paint_stroke_does_not_move_the_view(
        viewer, qtbot, brain, editing):
    widget, layer = editing
    widget.find_button.native.click()
    qtbot.waitUntil(lambda: widget.queue.rowCount() > 0, timeout=30_000)
    queue = widget.merge_queue
    a, b = widget.queue.rows[widget.queue.rows["kind"] == "merge?"]["labels"].iloc[0]
    c = next(x for x in queue.edges[a] if x != b)  # a third segment touching a
    for too_few in ([], [a]):
        widget.selected = too_few
        widget.merge_button.native.click()
        assert "two or more" in widget.status.text and not queue.asked
    widget.selected = [a, b, c]
    widget.merge_button.native.click()
    into = widget.editor.history[-1]["into"]
    assert queue.mapping([a, b, c]).tolist() == [into] * 3 and len(queue.asked) == 2
    assert all(i in widget.editor.boxes for pair in widget.queue.rows["labels"] for i in pair)
    widget.undo_button.native.click()  # both joins taken back
    assert queue.mapping([a, b, c]).tolist() == [a, b, c] and not queue.asked
    widget.redo_button.native.click()
    assert queue.mapping([a, b, c]).tolist() == [into] * 3

    widget.queue.selectRow(1)
    looked_at, centre = widget.queue.current(), tuple(viewer_camera(viewer).center)
    painted = next(x for pair in widget.queue.rows["labels"].iloc[2:] for x in pair if x not in looked_at["labels"])
    layer.selected_label = painted
    layer.paint(tuple(voxel_of(layer.data, painted)), painted, refresh=True)  # a stroke elsewhere
    assert widget.editor.history[-1]["kind"] == "paint" and painted in widget.editor.history[-1]["labels"]
    assert widget.queue.current()["labels"] == looked_at["labels"] and tuple(viewer_camera(viewer).center) == centre
    assert not any(painted in pair for pair in widget.queue.rows["labels"])  # its contacts changed
    widget.stop()  # the queue was of those labels
    assert widget.merge_queue is None and widget.queue.rowCount() == 0


def test_review_queue_learns_membranes_in_the_background(viewer, qtbot, brain, editing, monkeypatch):
    from napari_wbe import proofreading_queue

    monkeypatch.setattr(proofreading_queue, "LEARN_MEMBRANES_FROM", 4)  # a handful of answers here
    widget, layer = editing
    widget.find_button.native.click()
    qtbot.waitUntil(lambda: widget.queue.rowCount() > 0, timeout=30_000)
    queue = widget.merge_queue
    assert queue.faces is not None  # an EM layer is chosen: the queue can learn membranes
    neuron = brain.fragment_to_neuron
    while queue.decisions() < 16 and "Learning membranes" not in widget.status.text:  # both answers needed
        row = widget.queue.current()
        one_cell = row["kind"] == "merge?" and neuron[row["labels"][0]] == neuron[row["labels"][1]]
        (widget.accept_button if one_cell else widget.reject_button).native.click()
    qtbot.waitUntil(lambda: queue.membrane is not None, timeout=30_000)
    assert "Learned what membranes look like" in widget.status.text
    assert len(queue.weights) == 6 and widget.queue.rowCount() > 0
    merges = widget.queue.rows[widget.queue.rows["kind"] == "merge?"]
    assert merges["reason"].str.contains("learned membrane").all()  # each row says what the model saw
    reason = widget.queue.item(0, list(widget.queue.frame.columns).index("reason"))
    assert reason.toolTip() == reason.text()  # whole on hover, however narrow the column


def test_review_queue_reads_membranes_from_a_boundary_map(viewer, qtbot, brain, editing):
    widget, layer = editing
    truth = brain.labels
    walls = np.zeros(truth.shape, np.float32)  # a perfect boundary map: 1 where the true cells meet
    for axis in range(3):
        step = np.diff(truth, axis=axis) != 0
        walls[tuple(slice(1, None) if a == axis else slice(None) for a in range(3))] += step
        walls[tuple(slice(None, -1) if a == axis else slice(None) for a in range(3))] += step
    wrong = viewer.add_image(walls[:, :48], name="half a map")
    widget.reset_choices()
    widget.boundary_layer.value = wrong
    widget.find_button.native.click()
    assert "'half a map' is (24, 48, 96) (z, y, x) but the labels are (24, 96, 96)" in widget.status.text
    widget.boundary_layer.value = viewer.add_image(np.minimum(walls, 1), name="boundary map")
    widget.find_button.native.click()
    qtbot.waitUntil(lambda: widget.queue.rowCount() > 0, timeout=30_000)
    assert "membranes read from the boundary map" in widget.status.text
    neuron = brain.fragment_to_neuron
    merges = widget.queue.rows[widget.queue.rows["kind"] == "merge?"].head(20)
    assert all(neuron[a] == neuron[b] for a, b in merges["labels"])  # with true membranes, all right


def test_review_queue_reads_barcodes(viewer, qtbot, brain, editing):
    widget, layer = editing
    neuron = brain.fragment_to_neuron
    first_3, all_7 = int(np.flatnonzero(neuron == 3)[0]), np.flatnonzero(neuron == 7).tolist()
    widget.selected = [first_3, *all_7]  # a wrong merge: neuron 7 glued onto a piece of neuron 3
    widget.merge_button.native.click()
    glued = widget.editor.history[-1]["into"]  # the biggest segment's id
    tags = viewer.add_image(brain.barcode_image, channel_axis=0, name=[f"tag {i}" for i in range(18)])
    widget.reset_choices()
    widget.barcode_layers.value = tags[:1]
    widget.find_button.native.click()
    assert "several 3-D layers, one per tag; got tag 0 (3-D)" in widget.status.text
    widget.barcode_layers.value = tags
    widget.find_button.native.click()
    qtbot.waitUntil(lambda: widget.queue.rowCount() > 0, timeout=60_000)
    splits = widget.queue.rows[widget.queue.rows["kind"] == "split?"]
    assert [tuple(labels) for labels in splits["labels"]] == [(glued,)]  # found by its two codes
    assert widget.merge_queue.code  # the merge queue weighs pairs by their codes too
    widget.queue.selectRow(int(np.flatnonzero(widget.queue.rows["kind"] == "merge?")[0]))
    widget.reject_button.native.click()  # an answer: the merge rows now come from the queue
    merges = widget.queue.rows[widget.queue.rows["kind"] == "merge?"]
    assert merges["reason"].str.contains("same barcode").any()
    assert all(neuron[a] == neuron[b] for a, b in merges.head(20)["labels"] if glued not in (a, b))


def test_split_seed_clicked_in_3d_lands_on_the_segment(viewer, qtbot, brain, editing):
    widget, layer = editing
    a = pair_in_one_neuron(brain)[0]
    widget.mode.value = SPLIT
    viewer.dims.ndisplay = 3
    viewer.reset_view()
    target = voxel_of(brain.fragments, a)
    event = SimpleNamespace(type="mouse_press", position=tuple(layer.data_to_world(target)), modifiers=(),
                            view_direction=tuple(viewer.scene.camera.view_direction),
                            dims_displayed=list(viewer.dims.displayed))
    mouse_press_callbacks(layer, event)
    event.type = "mouse_release"
    mouse_release_callbacks(layer, event)
    assert len(widget.seeds[0]) == 1
    assert layer.data[tuple(widget.seeds[0][0])] == layer.get_value(
        event.position, view_direction=event.view_direction, dims_displayed=event.dims_displayed, world=True)
