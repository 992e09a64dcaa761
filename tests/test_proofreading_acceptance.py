"""The review queue's acceptance: answered by a simulated proofreader (tests/simulated_proofreader.py),
the ranked queue halves the medulla cube's VI in at most a fifth of the decisions the same
queue needs in random order."""

from __future__ import annotations

import numpy as np
import pytest

from napari_wbe.proofreading_contacts import contact_table
from napari_wbe.proofreading_faces import face_sample
from napari_wbe.proofreading_metrics import metrics
from napari_wbe.proofreading_queue import MergeQueue
from tests.simulated_proofreader import RandomOrder, Scorer, run


def test_random_order_draws_the_open_pairs_of_segments_uniformly():
    # 1-2, 1-3, 2-3, 3-4, 4-5 touch; after "merge 1 and 2" and "keep 4 and 5 apart" the open
    # pairs are {1,2}-3 (two fragment contacts, one pair) and 3-4.
    queue = RandomOrder([(1, 2), (1, 3), (2, 3), (3, 4), (4, 5)], seed=0)
    queue.answer({"a": 1, "b": 2}, True)
    queue.answer({"a": 4, "b": 5}, False)
    drawn = [frozenset((pair["a"], pair["b"])) for pair in (queue.next() for _ in range(4000))]
    assert set(drawn) == {frozenset({1, 3}), frozenset({3, 4})}
    assert abs(drawn.count(frozenset({1, 3})) / len(drawn) - 0.5) < 0.03  # a shuffle of fragment pairs: 2/3
    queue.answer({"a": 1, "b": 3}, True)
    queue.answer({"a": 1, "b": 4}, False)
    assert queue.next() is None
    assert queue.segment_of([1, 2, 3, 4, 5]).tolist() == [1, 1, 1, 4, 5]


@pytest.mark.realdata
def test_medulla_queue_halves_vi_in_a_fifth_of_the_decisions_of_random_order(shared_data, tmp_path_factory):
    from tests.medulla_cube import load

    cube = load(shared_data, tmp_path_factory.mktemp("medulla"))
    fragments, truth = cube["fragments"], cube["truth"]
    contacts = contact_table(fragments, image=cube["em"])
    scorer, target = Scorer(fragments, truth), metrics(fragments, truth)["vi"] / 2
    reached = run(MergeQueue(contacts, faces=face_sample(fragments, cube["em"], contacts.pairs)), scorer, target,
                  every=10**9)[1]
    touching = list(zip(contacts.pairs["a"].tolist(), contacts.pairs["b"].tolist()))
    randoms = [run(RandomOrder(touching, seed), scorer, target, every=10**9)[1] for seed in range(3)]
    # Measured (bench_proofreading_queue.py): 937 decisions; random order 5,290-5,911 over 20
    # seeds, mean 5,654 (0.166x). The suggestions' rows shuffled instead: mean 4,289 (0.218x).
    assert reached <= np.mean(randoms) / 5
