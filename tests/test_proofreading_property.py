"""Property: any edit sequence (keep-apart answers too), undone entirely, gives the original labels bit for bit;
redone, gives the edited labels; replaying the log gives the editor's labels."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_wbe.proofreading import EditError, Editor, replay


def blocky_labels(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 9, (3, 4, 4)).astype(np.uint32)
    return np.kron(coarse, np.ones((3, 4, 4), np.uint32))  # 9 x 16 x 16, blocks touching


edits = st.lists(st.tuples(st.sampled_from(["merge", "split", "delete", "relabel", "paint", "keep_apart", "undo"]),
                           st.integers(0, 10**6), st.integers(0, 10**6)), min_size=1, max_size=12)


def apply(ed: Editor, kind: str, i: int, j: int) -> None:
    ids = sorted(ed.boxes)
    if not ids:
        return
    a, b = ids[i % len(ids)], ids[j % len(ids)]
    try:
        if kind == "merge":
            ed.merge([a, b])
        elif kind == "split":
            voxels = np.argwhere(ed.labels == a)
            ed.split(a, voxels[:1], voxels[-1:])
        elif kind == "delete":
            ed.delete(a)
        elif kind == "relabel":
            ed.relabel(a)
        elif kind == "paint":
            rng = np.random.default_rng(i)
            index = tuple(rng.integers(0, s, 5) for s in ed.labels.shape)
            old = ed.labels[index].copy()
            ed.labels[index] = b if j % 2 else 0  # brush or eraser
            ed.record_paint(index, old)
        elif kind == "keep_apart":
            ed.keep_apart(a, b)
        else:
            ed.undo()
    except EditError:
        pass  # e.g. merging a label with itself: refused, nothing changes


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 20), steps=edits)
def test_undo_redo_replay_are_exact(tmp_path_factory, seed, steps):
    original = blocky_labels(seed)
    labels = original.copy()
    log = tmp_path_factory.mktemp("log") / "edits.wbelog"
    ed = Editor(labels, log_path=log)
    for step in steps:
        apply(ed, *step)
    edited = labels.copy()
    assert np.array_equal(replay(original, log), edited)
    for label, count in ed.counts.items():
        assert count == (labels == label).sum()
    while ed.redo():  # random undos may have left edits to redo
        pass
    edited = labels.copy()
    while ed.undo():
        pass
    assert np.array_equal(labels, original) and ed.kept_apart == []
    while ed.redo():
        pass
    assert np.array_equal(labels, edited)
    ed.close()
    assert np.array_equal(replay(original, log), edited)
