"""A simulated proofreader: answers merge suggestions from the ground truth and measures
VI as it goes (the proofreading acceptance test and benchmarks/bench_proofreading_queue.py).

A proofreader answers "merge" when both segments' majority truth bodies are the same, "keep
apart" otherwise. A decision is one answered pair; pairs already joined, or known apart
through an earlier "keep apart" between segments containing them, are skipped without a
decision (any tool would know).
"""

from __future__ import annotations

import numpy as np

from napari_wbe.proofreading_metrics import contingency, metrics

# VI is re-measured every this many decisions; once it is at the target, the merges since
# the previous check are replayed to find the exact decision that reached it.
CHECK_EVERY = 10


class Scorer:
    """VI of a relabelling of the fragments, from the fragments' contingency table alone."""

    def __init__(self, fragments, truth):
        table = contingency(fragments, truth)
        self.table = table[table["truth"] != 0]
        self.fragment_ids = self.table["label"].to_numpy()
        top = self.table.sort_values("count", ascending=False, kind="stable").drop_duplicates("label")
        self.majority = dict(zip(top["label"].tolist(), top["truth"].tolist()))

    def vi(self, segment_of) -> float:
        merged = self.table.assign(label=segment_of(self.fragment_ids))
        merged = merged.groupby(["truth", "label"], as_index=False)["count"].sum()
        return metrics(None, None, table=merged)["vi"]

    def same_body(self, a: int, b: int) -> bool:
        return self.majority.get(a, -1) == self.majority.get(b, -2)


class StaticQueue:
    """A fixed list of fragment pairs answered in order, with union-find and 'keep apart' memory."""

    def __init__(self, pairs):
        self.pairs, self.position = list(pairs), 0
        self.parent, self.apart = {}, {}

    def find(self, x):
        root = x
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while x != root:
            self.parent[x], x = root, self.parent.get(x, x)
        return root

    def segment_of(self, ids) -> np.ndarray:
        return np.array([self.find(int(i)) for i in ids])

    def next(self):
        while self.position < len(self.pairs):
            a, b = (self.find(x) for x in self.pairs[self.position])
            self.position += 1
            if a != b and b not in self.apart.get(a, ()):
                return {"a": a, "b": b}
        return None

    def answer(self, pair, accept: bool) -> None:
        a, b = pair["a"], pair["b"]
        if accept:
            self.parent[b] = a
            for x in self.apart.pop(b, set()):
                self.apart[x].discard(b)
                self.apart[x].add(a)
                self.apart.setdefault(a, set()).add(x)
        else:
            self.apart.setdefault(a, set()).add(b)
            self.apart.setdefault(b, set()).add(a)


class RandomOrder(StaticQueue):
    """`MergeQueue`'s own suggestions in random order: every decision is one of the open pairs
    of touching segments, drawn uniformly (the contacts of two merged segments with a third
    make one pair, as in the queue), with the same merge and "keep apart" bookkeeping and no
    scores. Shuffling the fragment pairs instead draws two segments as often as they have
    fragment pairs in contact, which favours big segments: a ranking by size of its own."""

    def __init__(self, pairs, seed: int):
        super().__init__([])
        self.rng = np.random.default_rng(seed)
        self.neighbours: dict[int, set] = {}
        for a, b in pairs:
            self.neighbours.setdefault(a, set()).add(b)
            self.neighbours.setdefault(b, set()).add(a)
        self.open, self.index = [], {}  # the pairs drawn from; a pair no longer open is dropped when drawn
        for a, b in pairs:
            self._add(a, b)

    def _add(self, a: int, b: int) -> None:
        key = (min(a, b), max(a, b))
        if key not in self.index:
            self.index[key] = len(self.open)
            self.open.append(key)

    def _drop(self, key: tuple) -> None:
        position, last = self.index.pop(key), self.open.pop()
        if last != key:  # the last pair takes the dropped one's place
            self.open[position], self.index[last] = last, position

    def next(self):
        while self.open:
            a, b = key = self.open[self.rng.integers(len(self.open))]
            if self.find(a) == a and self.find(b) == b and b not in self.apart.get(a, ()):
                return {"a": a, "b": b}
            self._drop(key)
        return None

    def answer(self, pair, accept: bool) -> None:
        a, b = pair["a"], pair["b"]
        self._drop((min(a, b), max(a, b)))
        super().answer(pair, accept)
        if accept:  # b joins a: b's neighbours become a's
            for x in self.neighbours.pop(b) - {a}:
                self.neighbours[x].discard(b)
                self.neighbours[x].add(a)
                self.neighbours[a].add(x)
                if x not in self.apart.get(a, ()):
                    self._add(a, x)
            self.neighbours[a].discard(b)


def run(queue, scorer: Scorer, target: float, every: int, curve_to: int = 0, max_decisions: int = 20_000):
    """Answer the queue until the target is reached and the curve drawn to `curve_to`; returns
    ({decisions: VI} every `every`, decisions to reach the target, the answers)."""
    segment_of = queue.segment_of if isinstance(queue, StaticQueue) else queue.mapping
    curve, reached, accepted, decisions = {0: scorer.vi(segment_of)}, None, [], 0
    merges = []  # (decision, a, b) of every accepted answer: only these change VI
    while decisions < max_decisions and (reached is None or decisions < curve_to) and \
            (pair := queue.next()) is not None:
        accept = scorer.same_body(pair["a"], pair["b"])  # segments stay pure: a root's body is its own
        queue.answer(pair, accept)
        accepted.append(accept)
        decisions += 1
        if accept:
            merges.append((decisions, pair["a"], pair["b"]))
        if decisions % CHECK_EVERY == 0 or decisions % every == 0:
            vi = scorer.vi(segment_of)
            if decisions % every == 0:
                curve[decisions] = vi
            if reached is None and vi <= target:
                reached = first_reaching(scorer, merges, target, after=decisions - CHECK_EVERY)
    return curve, reached, accepted


def first_reaching(scorer: Scorer, merges: list, target: float, after: int) -> int:
    """The exact decision at which VI fell to the target, after decision `after` (the
    previous check, where it was still above): the accepted merges are replayed, and VI
    measured after each one past it (only a merge changes VI)."""
    replayed = StaticQueue([])
    for decision, a, b in merges:
        replayed.answer({"a": replayed.find(a), "b": replayed.find(b)}, True)
        if decision > after and scorer.vi(replayed.segment_of) <= target:
            return decision
    raise AssertionError("the target was reached at the check, so at one of its merges")
