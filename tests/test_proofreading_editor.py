"""Editor: merge, split, delete, relabel, paint; undo/redo; the edit log and replay."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
import zarr

from napari_wbe.phantom import mini_brain
from napari_wbe.proofreading import EditError, Editor, LogError, replay


@pytest.fixture(scope="module")
def brain():
    return mini_brain(n_neurons=12, shape=(16, 64, 64), seed=2)


def two_touching(labels):
    a, b = labels[:, :, :-1].ravel(), labels[:, :, 1:].ravel()
    touch = (a != b) & (a > 0) & (b > 0)
    return int(a[touch][0]), int(b[touch][0])


def test_merge_undo_redo(brain, tmp_path):
    labels = brain.labels.copy()
    a, b = two_touching(labels)
    ed = Editor(labels, log_path=tmp_path / "edits.wbelog")
    assert ed.merge([a, b]) == a
    assert not (labels == b).any() and ((brain.labels == a) | (brain.labels == b)).sum() == (labels == a).sum()
    assert b not in ed.boxes and ed.counts[a] == (labels == a).sum()
    ed.undo()
    assert np.array_equal(labels, brain.labels) and ed.counts[b] == (labels == b).sum()
    ed.redo()
    assert not (labels == b).any()
    ed.close()
    assert np.array_equal(replay(brain.labels, tmp_path / "edits.wbelog"), labels)


def test_keep_apart_is_an_edit_that_follows_the_segments(brain, tmp_path):
    labels = brain.labels.copy()
    a, b = two_touching(labels)
    c = min(set(np.unique(labels)) - {0, a, b})
    ed = Editor(labels, log_path=tmp_path / "edits.wbelog")
    ed.keep_apart(b, a)
    assert np.array_equal(labels, brain.labels) and ed.history[-1]["kind"] == "keep_apart"
    assert ed.kept_apart == [(min(a, b), max(a, b))]
    ed.merge([c, a])  # a is part of c now: the answer is about c
    assert ed.kept_apart == [(min(b, c), max(b, c))]
    new_id = ed.relabel(c)
    assert ed.kept_apart == [(min(b, new_id), max(b, new_id))]
    assert ed.kept_apart_by_edit() == {ed.history[0]["id"]: (min(b, new_id), max(b, new_id))}  # which edit said so
    ed.undo(), ed.undo(), ed.undo()
    assert ed.kept_apart == [] and np.array_equal(labels, brain.labels)
    ed.redo()
    assert ed.kept_apart == [(min(a, b), max(a, b))]
    ed.close()
    resumed = brain.labels.copy()
    ed = Editor.resume(resumed, tmp_path / "edits.wbelog")  # the answer survives a restart
    assert ed.kept_apart == [(min(a, b), max(a, b))] and np.array_equal(resumed, brain.labels)
    ed.delete(b)
    assert ed.kept_apart == []
    for bad in ((a, a), (a, 0), (a, 10**6)):
        with pytest.raises(EditError):
            ed.keep_apart(*bad)
    ed.close()


def test_split_separates_a_merged_pair(brain):
    labels = brain.labels.copy()
    a, b = two_touching(labels)
    ed = Editor(labels, image=brain.em)
    ed.merge([a, b])
    seed_a = np.argwhere(brain.labels == a)[len(np.argwhere(brain.labels == a)) // 2]
    seed_b = np.argwhere(brain.labels == b)[len(np.argwhere(brain.labels == b)) // 2]
    ed.preview_split(a, [seed_a], [seed_b])
    assert np.array_equal(labels, np.where(brain.labels == b, a, brain.labels))  # preview changes nothing
    kept, new = ed.split(a, [seed_a], [seed_b])
    assert kept == a and new == brain.labels.max() + 1
    iou = ((labels == new) & (brain.labels == b)).sum() / ((labels == new) | (brain.labels == b)).sum()
    assert iou > 0.5
    assert ed.counts[new] == (labels == new).sum()


def test_delete_relabel_and_ids(brain, tmp_path):
    labels = brain.labels.copy()
    ed = Editor(labels, log_path=tmp_path / "log")
    ed.delete(3)
    assert not (labels == 3).any() and 3 not in ed.boxes
    fresh = ed.relabel(4)
    assert fresh == brain.labels.max() + 1 and (labels == fresh).sum() == (brain.labels == 4).sum()
    assert ed.relabel(5, 1000) == 1000
    for _ in range(3):
        ed.undo()
    assert np.array_equal(labels, brain.labels)
    ed.close()
    assert np.array_equal(replay(brain.labels, tmp_path / "log"), brain.labels)


def test_paint_is_recorded_and_undone(brain, tmp_path):
    labels = brain.labels.copy()
    ed = Editor(labels, log_path=tmp_path / "log")
    index = (np.array([2, 2, 3, 2]), np.array([10, 11, 10, 30]), np.array([5, 5, 6, 30]))  # background, and 8
    old = labels[index].copy()
    labels[index] = 7  # what napari's brush does before it emits the paint event
    ed.record_paint(index, old)
    assert ed.counts[7] == (labels == 7).sum()
    assert ed.history[-1]["labels"] == [7, 8]  # every segment the stroke touched
    painted = labels.copy()
    ed.undo()
    assert np.array_equal(labels, brain.labels)
    ed.redo()
    ed.close()
    assert np.array_equal(replay(brain.labels, tmp_path / "log"), painted)


@pytest.mark.parametrize("bad", [
    lambda ed, a, b: ed.merge([a, a]),
    lambda ed, a, b: ed.merge([]),
    lambda ed, a, b: ed.merge([a, 0]),
    lambda ed, a, b: ed.merge([a, 9999]),
    lambda ed, a, b: ed.split(a, [(0, 0, 0)], [(0, 0, 1)]),
    lambda ed, a, b: ed.split(a, np.argwhere(ed.labels == a)[:2], []),
    lambda ed, a, b: ed.delete(0),
    lambda ed, a, b: ed.relabel(a, b),
])
def test_bad_edits_leave_labels_unchanged(brain, bad):
    labels = brain.labels.copy()
    a, b = two_touching(labels)
    ed = Editor(labels)
    with pytest.raises(EditError):
        bad(ed, a, b)
    assert np.array_equal(labels, brain.labels) and not ed.can_undo


def test_bad_construction(brain, tmp_path):
    with pytest.raises(EditError, match="shape"):
        Editor(brain.labels.copy(), image=brain.em[:, :10])
    with pytest.raises(EditError, match="integer"):
        Editor(brain.labels.astype(float))
    Editor(brain.labels.copy(), log_path=tmp_path / "log").merge(list(two_touching(brain.labels)))
    with pytest.raises(LogError, match="resume"):
        Editor(brain.labels.copy(), log_path=tmp_path / "log")


def test_log_from_other_volume_is_refused(brain, tmp_path):
    ed = Editor(brain.labels.copy(), log_path=tmp_path / "log")
    ed.merge(list(two_touching(brain.labels)))
    ed.close()
    other = brain.labels.copy()
    other[0, 0, 0] += 1
    with pytest.raises(LogError, match="other labels"):
        replay(other, tmp_path / "log")
    with pytest.raises(LogError, match="shape"):
        replay(other[1:], tmp_path / "log")


def test_truncated_last_record_is_left_out_and_resume_continues(brain, tmp_path):
    labels = brain.labels.copy()
    a, b = two_touching(labels)
    ed = Editor(labels, log_path=tmp_path / "log")
    ed.delete(min(set(ed.boxes) - {a, b}))
    after_first = labels.copy()
    ed.merge([a, b])
    ed.close()
    data = open(tmp_path / "log", "rb").read()
    open(tmp_path / "log", "wb").write(data[:-25])  # a crash in the middle of the last record
    with pytest.warns(UserWarning, match="cut off"):
        assert np.array_equal(replay(brain.labels, tmp_path / "log"), after_first)
    resumed = brain.labels.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ed = Editor.resume(resumed, tmp_path / "log")
    ed.merge([a, b])
    ed.close()
    assert np.array_equal(replay(brain.labels, tmp_path / "log"), labels)


def test_zarr_backed_labels_are_edited_in_place(brain, tmp_path):
    store = zarr.open(str(tmp_path / "labels.zarr"), mode="w", shape=brain.labels.shape, chunks=(8, 32, 32),
                      dtype=brain.labels.dtype)
    store[:] = brain.labels
    a, b = two_touching(brain.labels)
    ed = Editor(store)
    ed.merge([a, b])
    assert not (zarr.open(str(tmp_path / "labels.zarr"))[:] == b).any()
    ed.undo()
    assert np.array_equal(store[:], brain.labels)


CHILD = r"""
import sys, numpy as np
from napari_wbe.phantom import mini_brain
from napari_wbe.proofreading import Editor
labels = mini_brain(n_neurons=12, shape=(16, 64, 64), seed=2).labels.copy()
ed = Editor(labels, log_path=sys.argv[1])
ids = sorted(ed.boxes)
for n, label in enumerate(ids[1:]):
    ed.merge([ids[0], label]) if n % 3 else ed.relabel(label)
    if n % 4 == 3:
        ed.undo()
    np.save(sys.argv[2], labels)      # what the user saw acknowledged
    print(n, flush=True)
    sys.stdin.readline()              # the parent decides when to kill
"""


def test_killed_editor_loses_no_acknowledged_edit(brain, tmp_path):
    log, seen = tmp_path / "log", tmp_path / "seen.npy"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(log), str(seen)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    for _ in range(6):
        child.stdout.readline()
        child.stdin.write("\n")
        child.stdin.flush()
    child.stdout.readline()
    child.kill()  # SIGKILL: no clean-up, no flush
    child.wait()
    assert np.array_equal(replay(brain.labels, log), np.load(seen))
