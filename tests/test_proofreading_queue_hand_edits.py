"""What a person does outside the queue's questions: taking back an answer (an undo in the
review widget) leaves the merge queue as if it had never been given; a merge made by hand,
of any segments, is the queue's merge too."""

from __future__ import annotations

import numpy as np
import pytest

from napari_wbe.phantom import mini_brain
from napari_wbe.proofreading_contacts import contact_table
from napari_wbe.proofreading_queue import MergeQueue


@pytest.fixture(scope="module")
def answered():
    brain = mini_brain(n_neurons=20, shape=(24, 96, 96), seed=0)
    contacts = contact_table(brain.fragments, image=brain.em)
    neuron = brain.fragment_to_neuron
    queue = MergeQueue(contacts, learn=False)
    asked = []
    for _ in range(40):
        pair = queue.next()
        accept = bool(neuron[pair["a"]] == neuron[pair["b"]])
        queue.answer(pair, accept)
        asked.append(((pair["a"], pair["b"]), accept))
    return brain, contacts, queue, asked


def test_taking_back_an_answer_is_as_if_it_was_never_given(answered):
    brain, contacts, queue, asked = answered
    rejected = next(k for k, (_, accept) in enumerate(asked) if not accept)
    assert any(accept for _, accept in asked[rejected + 1:])  # merges came after it
    assert queue.take_back(*asked[rejected][0]) and queue.take_back(*reversed(asked[-1][0]))
    assert queue.decisions() == 38 and not queue.take_back(10**6, 10**6 + 1)
    reference = MergeQueue(contacts, learn=False)  # never given those two answers
    for pair, accept in asked[:rejected] + asked[rejected + 1:-1]:
        reference.answer({"a": pair[0], "b": pair[1]}, accept)
    reference._rebuild()  # every open pair scored afresh, as after take_back (answering re-scores lazily)
    fragments = np.unique(brain.fragments[brain.fragments > 0])
    assert np.array_equal(queue.mapping(fragments), reference.mapping(fragments))
    neuron = brain.fragment_to_neuron
    for _ in range(30):  # and the same suggestions, with the same probabilities, from here on
        pair, expected = queue.next(), reference.next()
        assert {pair["a"], pair["b"]} == {expected["a"], expected["b"]}
        assert pair["probability"] == pytest.approx(expected["probability"])
        for q in (queue, reference):
            q.answer(pair, bool(neuron[pair["a"]] == neuron[pair["b"]]))


def test_a_merge_taken_back_is_two_segments_again_and_asked_again():
    labels = np.zeros((4, 6, 9), np.int32)
    labels[:, :, :3], labels[:, :3, 3:], labels[:, 3:, 3:] = 1, 2, 3  # each touches the other two
    queue = MergeQueue(contact_table(labels, boundary=np.full(labels.shape, 0.2, np.float32)), learn=False)
    queue.answer({"a": 1, "b": 2}, True)
    queue.answer({"a": queue.segment_of(1), "b": 3}, False)
    assert queue.next() is None
    assert not queue.take_back(1, 2, accepted=False)  # it was a "yes"
    assert queue.take_back(1, 2, accepted=True)  # the later "no" was about 1+2 and 3: it holds for 1 and 3 ...
    assert queue.mapping([1, 2, 3]).tolist() == [1, 2, 3]
    assert queue.cannot == {1: {3}, 3: {1}}  # ... (it was asked as (1, 3): 1 kept its id)
    assert {frozenset((s["a"], s["b"])) for s in queue.top(5)} == {frozenset((1, 2)), frozenset((2, 3))}


def test_a_hand_merge_of_any_segments_joins_them_in_the_queue():
    labels = np.zeros((4, 6, 12), np.int32)
    labels[:, :, :3], labels[:, :3, 3:6], labels[:, 3:, 3:6], labels[:, :, 9:] = 1, 2, 3, 4  # 4 touches none
    queue = MergeQueue(contact_table(labels, boundary=np.full(labels.shape, 0.2, np.float32)), learn=False)
    queue.answer({"a": 2, "b": 3}, False)
    kept = queue.join([4, 2, 1, 3])  # 2 and 3 were kept apart: the person changed their mind
    assert queue.mapping([1, 2, 3, 4]).tolist() == [kept] * 4 and queue.next() is None
    assert queue.size[kept] == (labels > 0).sum() and queue.cannot.get(kept, set()) == set()
    # the model learns from the join of 1 and 2 (touching, not kept apart), not from 1+2 with 3 (2 was
    # kept apart from 3) nor from 4 (touching none); all three joins are the queue's answers
    assert [accepted for _, accepted in queue.answers] == [False, True] and len(queue.asked) == 4
    while queue.asked[-1][1]:  # the joins taken back, last first (an undo of the hand merge)
        assert queue.take_back(*queue.asked[-1][0], accepted=True)
    assert queue.mapping([1, 2, 3, 4]).tolist() == [1, 2, 3, 4] and queue.cannot == {2: {3}, 3: {2}}
    assert {frozenset((s["a"], s["b"])) for s in queue.top(5)} == {frozenset((1, 2)), frozenset((1, 3))}
