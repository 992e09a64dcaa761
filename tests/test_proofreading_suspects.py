"""Error suggestions: merge?, split?, orphan rows on the phantom and the real medulla cube;
the contact table they rest on and the re-ranking merge queue."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from skimage.segmentation import find_boundaries

from napari_wbe.phantom import mini_brain
from napari_wbe.proofreading_contacts import contact_flatness, contact_table, largest_eigenvalue
from napari_wbe.proofreading_metrics import contingency, metrics
from napari_wbe.proofreading_model import DIFFERENT_CODE_LOG_ODDS, SAME_CODE_LOG_ODDS, fit_weights
from napari_wbe.proofreading_queue import ONE_CELL_AT_LEAST, MergeQueue
from napari_wbe.proofreading_suspects import COLUMNS, suspects


@pytest.fixture(scope="module")
def brain():
    return mini_brain(n_neurons=20, shape=(24, 96, 96), seed=0)


def merge_precision(table, same_cell, top: int) -> float:
    rows = table[table["kind"] == "merge?"].head(top)
    return float(np.mean([same_cell(a, b) for a, b in rows["labels"]]))


def test_top_merge_suggestions_on_the_phantom_are_true_splits(brain):
    neuron = brain.fragment_to_neuron
    table = suspects(brain.fragments, image=brain.em)
    assert list(table.columns) == COLUMNS
    assert table["score"].is_monotonic_decreasing
    # measured: 19 of the top 20 join two fragments of one neuron (17% of all touching pairs do)
    assert merge_precision(table, lambda a, b: neuron[a] == neuron[b], 20) >= 0.9
    first = table.iloc[0]
    assert first["kind"] == "merge?" and "mean boundary" in first["reason"] and "faces" in first["reason"]


def test_every_row_points_at_a_voxel_of_its_segments(brain):
    table = suspects(brain.fragments, image=brain.em, min_size=1500)  # some fragments count as orphans
    assert (table["kind"] == "orphan").any()
    values = brain.fragments[table["z"], table["y"], table["x"]]
    assert all(v in ids for v, ids in zip(values, table["labels"]))
    merges = table[table["kind"] == "merge?"]
    assert all(len(ids) == 2 and ids[0] < ids[1] for ids in merges["labels"])


def test_orphans_are_found_and_point_inside(brain):
    labels = brain.fragments.copy()
    z, y, x = np.argwhere(labels == 5)[len(np.argwhere(labels == 5)) // 2]
    crumb = int(labels.max()) + 1
    labels[z, y, x] = crumb  # a one-voxel crumb inside fragment 5
    table = suspects(labels, image=brain.em)
    orphans = table[table["kind"] == "orphan"]
    assert list(orphans["labels"]) == [(crumb,)]
    row = orphans.iloc[0]
    assert (row["z"], row["y"], row["x"]) == (z, y, x)
    assert "touches 5 most" in row["reason"] and row["probability"] > 0.95


def test_barcode_false_merge_is_a_top_split_suggestion(brain):
    neuron = brain.fragment_to_neuron
    labels = brain.fragments.copy()
    first_3, all_7 = np.flatnonzero(neuron == 3)[0], np.flatnonzero(neuron == 7)
    assert not np.array_equal(brain.codebook[2], brain.codebook[6])  # different codes
    labels[np.isin(labels, all_7)] = first_3  # neuron 7 glued onto a fragment of neuron 3
    table = suspects(labels, image=brain.em, barcode_image=brain.barcode_image, codebook=brain.codebook)
    splits = table[table["kind"] == "split?"]
    assert list(splits["labels"]) == [(first_3,)]
    # among the first suggestions (measured: 13th of 277; the 12 above are merges with
    # p > 0.97 scoring 0.042-0.061, the split row 0.042: a near tie, weights decide it)
    assert splits.index[0] < 20
    assert "code_3" in splits.iloc[0]["reason"] and "code_7" in splits.iloc[0]["reason"]
    # touching fragments with different codes are no longer offered for merging
    merges = table[table["kind"] == "merge?"].head(20)
    assert "same barcode" in merges.iloc[0]["reason"]
    assert all(neuron[a] == neuron[b] for a, b in merges["labels"] if first_3 not in (a, b))


def test_a_boundary_map_replaces_the_image(brain):
    neuron = brain.fragment_to_neuron
    boundary = find_boundaries(brain.labels, mode="inner").astype(np.float32)  # a perfect membrane prediction
    table = suspects(brain.fragments, boundary=boundary)
    assert merge_precision(table, lambda a, b: neuron[a] == neuron[b], 30) == 1.0
    geometry_only = suspects(brain.fragments)  # no boundary at all: contact shape and size only
    assert (geometry_only["kind"] == "merge?").any() and "mean boundary" not in geometry_only.iloc[0]["reason"]


def test_chunked_contacts_equal_whole_volume(brain):
    whole = contact_table(brain.fragments, image=brain.em)
    parts = contact_table(da.from_array(brain.fragments, chunks=(10, 40, 50)),
                          image=da.from_array(brain.em, chunks=(10, 40, 50)))
    columns = ["a", "b", "contact", "boundary_sum", "flatness"]
    pd.testing.assert_frame_equal(whole.pairs[columns], parts.pairs[columns], atol=1e-6)
    np.testing.assert_allclose(whole.face_moments, parts.face_moments)
    pd.testing.assert_frame_equal(whole.segments, parts.segments)
    sizes = np.bincount(brain.fragments.ravel())[1:]
    np.testing.assert_array_equal(whole.segments["size"], sizes[sizes > 0])
    # every pair's two voxels are neighbours, one in each segment
    p = whole.pairs
    assert (brain.fragments[p["z"], p["y"], p["x"]] == p["a"]).all()
    assert (brain.fragments[p["bz"], p["by"], p["bx"]] == p["b"]).all()
    steps = np.abs(p[["z", "y", "x"]].to_numpy() - p[["bz", "by", "bx"]].to_numpy()).sum(axis=1)
    assert (steps == 1).all()


def test_contact_flatness_tells_a_sheet_from_a_ragged_cut():
    z, y, x = np.mgrid[:20, :20, :20]
    sheet = np.where(x < 10, 1, 2)  # two cells meeting along a plane
    ball = np.where((z - 10) ** 2 + (y - 10) ** 2 + (x - 10) ** 2 < 36, 2, 1)  # a closed, curved contact
    rng = np.random.default_rng(0)
    ragged = np.where(x < 10 + rng.integers(-3, 4, size=(20, 20, 1)), 1, 2)  # a cut with no smooth shape
    flat = {name: contact_table(labels).pairs["flatness"].item()
            for name, labels in (("sheet", sheet), ("ball", ball), ("ragged", ragged))}
    assert flat["sheet"] > 3  # no thickness at all: only the floor keeps it finite
    assert flat["ball"] < 0.1 and flat["ragged"] < 1.5
    one_face = contact_table(np.array([[[1, 2]]])).pairs["flatness"].item()
    assert one_face == pytest.approx(0.0)  # no plane to measure: scored like a ragged cut
    assert len(contact_flatness(np.zeros(0), np.zeros((0, 9)))) == 0


def test_merge_queue_measures_merged_contacts_as_one():
    labels = np.ones((8, 12, 12), np.int32)
    labels[:, 6:, :6], labels[:, 6:, 6:], labels[:, :6, 6:] = 2, 3, 4  # 3 and 4 meet 1 and 2 around a corner
    contacts = contact_table(labels, boundary=np.zeros(labels.shape, np.float32))
    queue = MergeQueue(contacts, learn=False)
    queue.answer({"a": 3, "b": 4}, True)
    root = queue.segment_of(3)
    joined = contact_table(np.where(labels == 4, 3, labels), boundary=np.zeros(labels.shape, np.float32)).pairs
    checked = 0
    for suggestion in queue.top(10):
        if root in (suggestion["a"], suggestion["b"]):
            other = suggestion["a"] if suggestion["b"] == root else suggestion["b"]
            expected = joined[(joined["a"] == min(other, 3)) & (joined["b"] == max(other, 3))]
            assert suggestion["flatness"] == pytest.approx(expected["flatness"].item())
            checked += 1
    assert checked == 2  # the corner contacts with 1 and with 2


def test_closed_form_eigenvalue():
    rng = np.random.default_rng(0)
    zz, yy, xx, zy, zx, yx = rng.normal(size=(6, 500))
    matrices = np.array([[zz, zy, zx], [zy, yy, yx], [zx, yx, xx]]).transpose(2, 0, 1)
    np.testing.assert_allclose(largest_eigenvalue(zz, yy, xx, zy, zx, yx), np.linalg.eigvalsh(matrices)[:, -1],
                               atol=1e-10)


def answer_all(queue: MergeQueue, majority: dict, limit: int = 10_000) -> list:
    asked = []
    while len(asked) < limit and (pair := queue.next()) is not None:
        accept = majority[pair["a"]] == majority[pair["b"]]
        asked.append((pair["a"], pair["b"], accept))
        queue.answer(pair, accept)
    return asked


def test_merge_queue_rebuilds_the_neurons(brain):
    contacts = contact_table(brain.fragments, image=brain.em)
    neuron = brain.fragment_to_neuron
    queue = MergeQueue(contacts, refit_every=10)
    asked = answer_all(queue, dict(enumerate(neuron.tolist())))
    assert len({frozenset(p[:2]) for p in asked}) == len(asked)  # nothing asked twice
    merged = np.r_[0, queue.mapping(np.arange(1, len(neuron)))][brain.fragments]
    m = metrics(merged, brain.labels)
    # answered to the end, the queue rebuilds every neuron exactly (each is one connected piece here)
    assert m["vi"] == pytest.approx(0.0, abs=1e-12) and m["n_segments"] == 20
    assert len(asked) < len(contacts.pairs)  # rejections spared later questions
    first_ten = [accepted for _, _, accepted in asked[:10]]
    # measured: 8 (the two rejected touch over 9 and 13 faces); 17% of touching pairs are one neuron
    assert sum(first_ten) >= 8


def test_merge_queue_adds_contacts_exactly():
    labels = np.zeros((4, 6, 9), np.int32)
    labels[:, :, 0:3], labels[:, :, 3:6], labels[:, :3, 6:], labels[:, 3:, 6:] = 1, 2, 3, 4
    contacts = contact_table(labels, boundary=np.zeros(labels.shape, np.float32))
    queue = MergeQueue(contacts, learn=False)
    queue.answer({"a": 1, "b": 2}, True)
    root = queue.segment_of(1)
    assert root == queue.segment_of(2) and queue.size[root] == 4 * 6 * 6
    edges = queue.edges[root]
    assert set(edges) == {3, 4} and edges[3][0] == 4 * 3 and edges[4][0] == 4 * 3
    queue.answer({"a": 3, "b": root}, False)
    queue.answer({"a": 4, "b": 3}, True)  # 3 and 4 join: the pair (1+2, 3+4) is known to be apart
    assert queue.next() is None


def test_keeping_apart_lowers_the_pairs_it_implies():
    labels = np.zeros((4, 6, 9), np.int32)
    labels[:, :, :3], labels[:, :3, 3:], labels[:, 3:, 3:] = 1, 2, 3  # each touches the other two
    contacts = contact_table(labels, boundary=np.full(labels.shape, 0.2, np.float32))
    queue = MergeQueue(contacts, learn=False)
    before = {frozenset((s["a"], s["b"])): s["probability"] for s in queue.top(3)}
    queue.answer({"a": 1, "b": 3}, False)
    after = {frozenset((s["a"], s["b"])): s["probability"] for s in queue.top(3)}
    assert set(after) == {frozenset((1, 2)), frozenset((2, 3))}
    p12, p23 = before[frozenset((1, 2))], before[frozenset((2, 3))]

    def given_apart(p, other):  # p s / (p s + 1 - p), s = 1 - the other pair's probability without the floor
        s = 1 - (other - ONE_CELL_AT_LEAST) / (1 - ONE_CELL_AT_LEAST)
        return p * s / (p * s + 1 - p)

    # 2 can be one cell with 1 only if it is not one with 3, and with 3 only if not with 1
    assert after[frozenset((1, 2))] == pytest.approx(given_apart(p12, p23))
    assert after[frozenset((2, 3))] == pytest.approx(given_apart(p23, p12))
    assert after[frozenset((1, 2))] < p12 and after[frozenset((2, 3))] < p23
    best = queue.next()
    assert best["probability"] == max(after.values())  # the queue's order uses them
    # and it says why: (1, 2) is lowered because 2 looks like 3, kept apart from 1
    expected = {frozenset((1, 2)): (2, 3, 1), frozenset((2, 3)): (2, 1, 3)}[frozenset((best["a"], best["b"]))]
    like = best["looks_like"]
    assert (like["segment"], like["like"], like["kept_apart_from"]) == expected
    queue.answer({"a": 2, "b": 3}, False)  # 2 is not 3's cell either: nothing holds 2 back from 1 now
    last = queue.next()
    assert {last["a"], last["b"]} == {1, 2} and "looks_like" not in last
    assert last["probability"] == pytest.approx(p12)


def test_merge_queue_weighs_pairs_by_their_barcodes():
    labels = np.zeros((4, 6, 9), np.int32)
    labels[:, :, :3], labels[:, :3, 3:], labels[:, 3:, 3:] = 1, 2, 3  # each touches the other two
    contacts = contact_table(labels, boundary=np.full(labels.shape, 0.2, np.float32))

    def log_odds(queue):  # of the model, before the floor
        alike = {frozenset((s["a"], s["b"])): (s["probability"] - ONE_CELL_AT_LEAST) / (1 - ONE_CELL_AT_LEAST)
                 for s in queue.top(3)}
        return {pair: np.log(p / (1 - p)) for pair, p in alike.items()}

    plain = log_odds(MergeQueue(contacts, learn=False))
    coded = MergeQueue(contacts, learn=False, codes=pd.Series({1: 5, 2: 5, 3: 9}))
    shifted = log_odds(coded)
    assert shifted[frozenset((1, 2))] == pytest.approx(plain[frozenset((1, 2))] + SAME_CODE_LOG_ODDS)
    for pair in ((1, 3), (2, 3)):
        assert shifted[frozenset(pair)] == pytest.approx(plain[frozenset(pair)] + DIFFERENT_CODE_LOG_ODDS)
    best = coded.next()
    assert {best["a"], best["b"]} == {1, 2} and best["codes"] == (5, 5)
    coded.answer(best, True)
    last = coded.next()  # the merged segment carries code 5 on, against 3's 9
    assert sorted(last["codes"]) == [5, 9]


def test_lowered_pairs_rescored_late_keep_the_order_of_rescoring_at_once():
    # keep-apart answers only lower pairs (or lift the few lowered through the answered pair),
    # so re-scoring a lowered pair when it reaches the top gives the order re-scoring all at
    # once would; top(n) re-scores every lowered pair, so asking it each time is the reference
    rng = np.random.default_rng(3)
    seeds = rng.uniform(0, 12, (40, 3))  # Voronoi cells: many segments touch two touching others
    grid = np.stack(np.meshgrid(*[np.arange(12)] * 3, indexing="ij"), -1)
    labels = (np.linalg.norm(grid[..., None, :] - seeds, axis=-1).argmin(-1) + 1).astype(np.int32)
    contacts = contact_table(labels, boundary=rng.uniform(0, 0.6, labels.shape).astype(np.float32))
    late, at_once = MergeQueue(contacts, learn=False), MergeQueue(contacts, learn=False)
    asked = []
    while (pair := late.next()) is not None:
        reference = at_once.top(1)[0]
        assert {pair["a"], pair["b"]} == {reference["a"], reference["b"]}
        assert pair["probability"] == pytest.approx(reference["probability"])
        for queue in (late, at_once):
            queue.answer(pair, False)
        asked.append(pair)
    assert len(asked) == len(contacts.pairs) and any("looks_like" in pair for pair in asked)


def test_membranes_are_learned_from_what_the_answers_imply(monkeypatch):
    labels = np.zeros((4, 6, 9), np.int32)
    labels[:, :, 0:3], labels[:, :, 3:6], labels[:, :3, 6:], labels[:, 3:, 6:] = 1, 2, 3, 4
    contacts = contact_table(labels, boundary=np.zeros(labels.shape, np.float32))
    row = {pair: i for i, pair in enumerate(zip(contacts.pairs["a"], contacts.pairs["b"]))}
    queue = MergeQueue(contacts, faces="a face sample", train_later=True)
    queue.answer({"a": 1, "b": 2}, True)
    queue.answer({"a": 3, "b": queue.segment_of(2)}, False)
    queue.answer({"a": 4, "b": 3}, True)
    trained = {}
    monkeypatch.setattr("napari_wbe.proofreading_queue.learn_membranes",
                        lambda faces, rows, accepted: trained.update(rows=rows, accepted=accepted))
    queue.membrane_trainer()()
    taught = {frozenset(rows): accepted for rows, accepted in zip(trained["rows"], trained["accepted"])}
    # inside: the two accepted contacts; between: all of 1+2 against 3+4, though only 2-3 was asked
    assert taught == {frozenset([row[1, 2]]): True, frozenset([row[3, 4]]): True,
                      frozenset([row[2, 3], row[2, 4]]): False}


@pytest.mark.realdata
def test_medulla_suspects_mostly_right(shared_data, tmp_path_factory):
    from tests.medulla_cube import load

    cube = load(shared_data, tmp_path_factory.mktemp("medulla"))
    table = suspects(cube["fragments"], image=cube["em"])  # its cost: benchmarks/bench_proofreading_queue.py
    overlaps = contingency(cube["fragments"], cube["truth"])
    overlaps = overlaps[overlaps["truth"] != 0].sort_values("count", ascending=False).drop_duplicates("label")
    body = dict(zip(overlaps["label"], overlaps["truth"]))

    def same(a, b):
        return body.get(a, -1) == body.get(b, -2)

    # Weights fitted on another volume (fibsem_small; this cube is the benchmark's evaluation
    # set). Measured: 10 of the top 20 are true false splits (12 before contact flatness
    # joined the model; 46% of all touching pairs are): the top rows are big pairs the model
    # is too sure of, which the queue's learning fixes.
    assert merge_precision(table, same, 20) >= 0.5
    # the probability itself separates the cases: its 100 most confident pairs were all right
    merges = table[table["kind"] == "merge?"].sort_values("probability", ascending=False, kind="stable")
    assert np.mean([same(a, b) for a, b in merges["labels"].head(100)]) >= 0.95
    assert (table["kind"] == "orphan").sum() > 100


@pytest.mark.realdata
def test_medulla_contacts_between_cells_are_flatter(shared_data, tmp_path_factory):
    from tests.medulla_cube import load

    cube = load(shared_data, tmp_path_factory.mktemp("medulla"))
    pairs = contact_table(cube["fragments"]).pairs
    overlaps = contingency(cube["fragments"], cube["truth"])
    overlaps = overlaps[overlaps["truth"] != 0].sort_values("count", ascending=False).drop_duplicates("label")
    body = dict(zip(overlaps["label"], overlaps["truth"]))
    same = np.array([body.get(a, -1) == body.get(b, -2) for a, b in zip(pairs["a"], pairs["b"])])
    flatness = pairs["flatness"].to_numpy()[pairs["contact"].to_numpy() >= 30]
    same = same[pairs["contact"].to_numpy() >= 30]
    # measured: mean 0.67 between pieces of one cell, 1.05 between two cells (ROC AUC 0.75)
    assert flatness[same].mean() < 0.75 and flatness[~same].mean() > 0.95


def test_fit_weights_holds_each_weight_to_its_prior_as_firmly_as_asked():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, 2))
    accepted = features @ np.array([3.0, -3.0]) + rng.logistic(size=400) > 0
    prior = np.zeros(3)
    loose = fit_weights(features, accepted, prior, strength=1e-6)
    assert loose[1] > 2 and loose[2] < -2  # the answers' own weights
    held = fit_weights(features, accepted, prior, strength=[1e-6, 1e6, 1e-6])
    assert abs(held[1]) < 1e-3 and held[2] < -1  # the first feature pinned, the second still learned
    # an offset (barcode log-odds) the answers follow is not learned again by the weights
    offset = features[:, 0] * 3.0
    shared = fit_weights(features, accepted, prior, strength=1e-6, offset=offset)
    assert abs(shared[1]) < 0.5 and shared[2] < -2
