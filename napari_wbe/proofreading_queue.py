"""Merge suggestions one at a time, best first, re-ranked as the proofreader answers.

    queue = MergeQueue(contact_table(fragments, image=em))
    while (pair := queue.next()) is not None:
        queue.answer(pair, accept=looks_like_one_cell(pair))   # a person, or a test oracle
    queue.segment_of(fragment_id)                               # -> its current segment

A pair's score is the merge model's probability that the two segments are one cell
(proofreading_model: boundary strength, enclosure, size and flatness of the contact, their
barcodes when given; `suspects` ranks "merge?" rows by it too) times the split VI joining
them removes: the expected improvement of one decision. An accepted merge adds up the two
segments' contacts with each neighbour (faces, boundary sums and face moments add, so the
new means are exact) and re-scores those pairs. A rejected pair is remembered, so no segment
containing one side is offered the other again, and it lowers the pairs it implies
(`_probabilities`). The logistic weights are refitted to the answers (every 10 of the first
100, then every `refit_every`), pulled towards the defaults.

Given `faces` (`proofreading_faces.face_sample` of the fragments and the EM), the queue also
learns what a membrane looks like in this volume: after 50, 100, 200, 400, ... answers a
classifier of face filter features is trained on the faces whose answer is known (inside an
accepted pair: not membrane; the whole contact of two segments kept apart: membrane), and
every pair gains a fifth input, the mean learned membrane probability along its contact.

`join(ids)` merges segments a person merged by hand; `take_back(a, b)` forgets an answer (an
undo). What each part is worth on the medulla cube: README, Benchmarks.
"""

from __future__ import annotations

import heapq
import itertools

import numpy as np
import pandas as pd

from .proofreading_contacts import Contacts
from .proofreading_faces import learn_membranes
from .proofreading_model import (
    DEFAULT_WEIGHTS,
    FEATURE_NAMES,
    GEOMETRY,
    fit_weights,
    merge_impact,
    merge_probability,
    record_code_offsets,
    record_features,
)

# The membrane classifier is trained after 50 answers and again at 100, 200, 400, ...:
# each training costs seconds, and later answers add less.
LEARN_MEMBRANES_FROM = 50
# The first answers refit every 10, until 100: the default weights, fitted on another volume,
# are least trustworthy then (a phantom's first 30 suggestions were all wrong before; now 15
# are right). One kind of answer is enough to refit: the prior keeps it finite.
EARLY_REFITS_UNTIL = 100
# Past 1,000 answers a refit waits until the answers have grown by this fraction (every 400
# answers at 8,000): 50 more move the weights little, and each refit re-scores every pair.
REFIT_GROWTH = 0.05
# The learned membrane's weight is held at 0 loosely (prior precision 0.1, the others 1): at 1
# it stayed at -4 after 100 answers on the medulla cube, at 0.1 it is -10 and the queue needs
# fewer decisions (README).
LEARNED_WEIGHT_PRECISION = 0.1
# Two segments are one cell with probability at least this, however membrane-like their
# contact: a neuron folds back against itself, and pieces cut by the volume's edge join
# outside it. It matters only for big pairs (README).
ONE_CELL_AT_LEAST = 0.003


class MergeQueue:
    """Best-first merge suggestions over a `Contacts` table, updated after every answer.

    faces: a `face_sample(labels, image, contacts.pairs)` to learn the look of membranes from
    (module docstring); None: the contacts' own boundary strengths only.
    train_later: when membranes are due, `answer` only sets `membranes_due`; the caller runs
    `membrane_trainer()` (seconds) in a worker thread and hands its result to `use_membranes`.
    codes: each segment's barcode (id -> code; 0 or missing: none), e.g.
    `barcode_evidence(labels, barcode_image).segments["code"]`: same or different codes shift a
    pair's log-odds (proofreading_model); a merged segment keeps the code of either part."""

    def __init__(self, contacts: Contacts, weights=None, learn: bool = True, refit_every: int = 50,
                 min_contact: int = 1, faces=None, train_later: bool = False, codes=None):
        self.weights = np.array(DEFAULT_WEIGHTS if weights is None else weights, np.float64)
        self.prior = self.weights.copy()
        self.learn, self.refit_every = learn, int(refit_every)
        self.contacts, self.min_contact = contacts, min_contact
        self.codes = {int(label): int(code) for label, code in dict({} if codes is None else codes).items() if code}
        self._start()
        self.faces = faces if learn else None
        self.membrane = None  # learned: per row of contacts.pairs, (summed, counted) membrane probability
        self.train_later, self.membranes_due = train_later, False
        # Heap entries are (-score, a, b, token); an entry counts while live[(min, max)] is its
        # token. A pair in `lowered` has a live entry whose score is only an upper bound (a
        # "keep apart" answer made it less likely): it is re-scored when it reaches the top.
        self.heap, self.live, self.lowered = [], {}, set()
        self.tokens = itertools.count()
        self.refitted_at, self.quiet = 0, False  # answers at the last refit; quiet: replaying, nothing scored
        self.answers: list[tuple] = []  # (the pair's record as `_record` gives it, accepted)
        self.asked: list[tuple] = []  # ((a, b) as they were named when answered, accepted)
        self._rebuild()

    def _start(self) -> None:
        """The segments and their contacts before any answer."""
        segments, contacts = self.contacts.segments, self.contacts
        self.size = dict(zip(segments.index.tolist(), segments["size"].tolist()))
        self.surface = dict(zip(segments.index.tolist(), segments["surface"].tolist()))
        self.code = dict(self.codes)  # the segments' codes now; self.codes: the fragments' as given
        self.parent, self.cannot = {}, {}  # union-find; segment -> the segments kept apart from it
        # edges[a][b] = [faces, boundary sum, rows of contacts.pairs the contact is made of]
        self.edges: dict[int, dict[int, list]] = {}
        rows = np.flatnonzero(contacts.pairs["contact"].to_numpy() >= self.min_contact)
        pairs = contacts.pairs.iloc[rows]
        boundary = pairs["boundary_sum"].to_numpy(np.float64) * (1.0 if contacts.boundary_source != "none" else np.nan)
        for row, a, b, n, s in zip(rows.tolist(), pairs["a"].tolist(), pairs["b"].tolist(),
                                   pairs["contact"].tolist(), boundary):
            self.edges.setdefault(a, {})[b] = self.edges.setdefault(b, {})[a] = [n, s, [row]]

    # --- the segments ------------------------------------------------------------------
    def segment_of(self, label: int) -> int:
        root = label
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while label != root:  # path compression: later look-ups are one step
            self.parent[label], label = root, self.parent.get(label, label)
        return root

    def mapping(self, labels) -> np.ndarray:
        """The current segment of each id in `labels` (ids without a segment map to themselves)."""
        return np.array([self.segment_of(int(x)) for x in np.asarray(labels).ravel()], np.int64)

    # --- asking and answering ----------------------------------------------------------
    def next(self) -> dict | None:
        """The best open suggestion: dict(a, b, probability, impact, score, contact, boundary_mean,
        flatness, learned_membrane once learned, codes (the two barcodes, 0 for none) if given, and
        looks_like if a keep-apart answer lowered it: the strongest such reason, dict(segment,
        like, probability, kept_apart_from)), a and b current segment ids; None when none is left."""
        while self.heap:
            negative, a, b, token = self.heap[0]
            if not self._live(a, b, token):
                heapq.heappop(self.heap)
            elif (min(a, b), max(a, b)) in self.lowered:
                self._push(self._pop_lowered())
            else:
                impact = float(merge_impact(self.size[a], self.size[b]))
                return self._suggestions([(a, b, -negative)])[0] | {"impact": impact}
        return None

    def top(self, n: int) -> list[dict]:
        """The n best open suggestions, best first (as `next()` gives them), none answered."""
        self._push([(a, b) for _, a, b, token in self.heap if (min(a, b), max(a, b)) in self.lowered
                    and self._live(a, b, token)])
        self.heap = [entry for entry in self.heap if self._live(*entry[1:])]
        heapq.heapify(self.heap)
        return self._suggestions([(a, b, -negative) for negative, a, b, _ in heapq.nsmallest(n, self.heap)])

    def answer(self, pair: dict, accept: bool) -> None:
        """Record the answer to a pair from `next()`: merge the two segments, or keep them apart. Any
        two may be merged (`join`); the model learns from answers about touching pairs not kept apart."""
        a, b = self.segment_of(pair["a"]), self.segment_of(pair["b"])
        count = len(self.answers)
        if a == b or (not accept and (b in self.cannot.get(a, ()) or b not in self.edges.get(a, {}))):
            return
        self._answered(a, b, accept)
        if not self.learn or self.quiet or len(self.answers) == count:
            return
        count += 1
        doublings = count // LEARN_MEMBRANES_FROM
        if self.faces is not None and count % LEARN_MEMBRANES_FROM == 0 and doublings & (doublings - 1) == 0:
            if self.train_later:
                self.membranes_due = True
            else:
                self.use_membranes(self.membrane_trainer()())
        elif (count % self.refit_every == 0 and count >= self.refitted_at * (1 + REFIT_GROWTH)) or \
                (count < EARLY_REFITS_UNTIL and count % 10 == 0):
            self._refit()

    def join(self, ids) -> int:
        """Merge segments a person merged by hand, touching or not (touching ones first, each an
        accepted answer, see `answer`). Returns the id the queue keeps: name the merged segment so."""
        segments = list(dict.fromkeys(self.segment_of(int(i)) for i in ids))
        while len(segments) > 1:
            x, y = next(((x, y) for x in segments for y in segments if y in self.edges.get(x, {})), segments[:2])
            self.answer({"a": x, "b": y}, True)
            segments = list(dict.fromkeys(self.segment_of(s) for s in segments))
        return segments[0]

    def take_back(self, a: int, b: int, accepted: bool | None = None) -> bool:
        """Forget (undo) the last answer about a and b as then named, if it was `accepted` (None: either;
        False if none): the segments are rebuilt from the other answers; weights and membranes stay."""
        about = [k for k, (pair, yes) in enumerate(self.asked) if set(pair) == {a, b} and accepted in (None, yes)]
        if not about:
            return False
        kept = self.asked[:about[-1]] + self.asked[about[-1] + 1:]
        self._start()
        self.answers, self.asked, self.quiet = [], [], True
        for pair, accept in kept:  # a "no" whose pair no longer touches (it did through a) is dropped
            self.answer({"a": pair[0], "b": pair[1]}, accept)
        self.quiet = False
        self._rebuild()
        return True

    def membrane_trainer(self):
        """A function (it may run in another thread) training the membrane classifier for
        `use_membranes` on what the answers imply: an accepted contact is inside one cell; two
        segments kept apart are two cells along all of their contact as it is now (A and B kept
        apart, then A merged with A': the A'-B contact is membrane too, though never asked)."""
        inside = [record[0] for record, accept in self.answers if accept]
        between = [list(self.edges[a][b][2]) for a, others in self.cannot.items() for b in others
                   if a < b and b in self.edges.get(a, {})]
        rows, accepted = inside + between, [True] * len(inside) + [False] * len(between)
        return lambda: learn_membranes(self.faces, rows, accepted)

    def use_membranes(self, learned) -> None:
        """Score with newly learned membranes (None: keep what was learned before) and refit."""
        self.membranes_due = False
        self.membrane = learned if learned is not None else self.membrane
        self._refit()

    # --- internals ----------------------------------------------------------------------
    def _suggestions(self, entries: list) -> list[dict]:
        """Suggestions for (a, b, score) entries, the model read for all of them at once."""
        pairs = [(a, b) for a, b, _ in entries]
        features = self._features([self._record(a, b) for a, b in pairs])
        links, owners, kept_from = self._apart_links(pairs)
        alike, strongest = self._alike(links) if links else [], {}  # pair -> its strongest keep-apart reason
        for j, k in enumerate(owners):
            if k not in strongest or alike[j] > alike[strongest[k]]:
                strongest[k] = j
        suggestions = []  # the same keys as next() gives, without impact
        for k, ((a, b, score), p) in enumerate(zip(entries, self._probabilities(pairs).tolist())):
            n, s, _ = self.edges[a][b]
            suggestion = {"a": a, "b": b, "probability": p, "score": score, "contact": n,
                          "boundary_mean": s / n if n else np.nan, "flatness": float(features[k, 3])}
            if self.code:
                suggestion["codes"] = (self.code.get(a, 0), self.code.get(b, 0))
            if (j := strongest.get(k)) is not None:
                suggestion["looks_like"] = {"segment": links[j][0], "like": links[j][1],
                                            "probability": float(alike[j]), "kept_apart_from": kept_from[j]}
            if features.shape[1] == GEOMETRY:  # the inputs known from the start, then the learned one
                suggestion["learned_membrane"] = float(features[k, GEOMETRY - 1])
            suggestions.append(suggestion)
        return suggestions

    def _probabilities(self, pairs: list) -> np.ndarray:
        """Probability that each (a, b) is one cell: the merge model's, at least ONE_CELL_AT_LEAST; if
        c was kept apart from a, b can be a's cell only if not c's, so p(a~b) becomes p s / (p s + 1 - p),
        s the product of 1 - p(b~c) over every such c touching b (and with a and b swapped)."""
        links, owners, _ = self._apart_links(pairs)
        row = {(min(a, b), max(a, b)): k for k, (a, b) in enumerate(pairs)}
        scored = list(pairs)
        for y, c in links:  # most links are open pairs scored anyway (all of them in a rebuild)
            if (min(y, c), max(y, c)) not in row:
                row[min(y, c), max(y, c)] = len(scored)
                scored.append((y, c))
        alike = self._alike(scored)
        p = ONE_CELL_AT_LEAST + (1.0 - ONE_CELL_AT_LEAST) * alike[:len(pairs)]
        if not links:
            return p
        spared = np.ones(len(pairs))
        np.multiply.at(spared, np.array(owners), 1.0 - alike[[row[min(y, c), max(y, c)] for y, c in links]])
        return p * spared / (p * spared + 1.0 - p)

    def _apart_links(self, pairs: list) -> tuple[list, list, list]:
        """For the pairs (a, b): every (b, c) with c kept apart from a and touching b, and
        every (a, c) likewise; with the index of its pair and the segment c was kept from."""
        links, owners, kept_from = [], [], []
        for k, (a, b) in enumerate(pairs):
            for x, y in ((a, b), (b, a)):
                apart = self.cannot.get(y, ())
                for c in self.cannot.get(x, set()) & self.edges.get(y, {}).keys():
                    if c not in apart:  # y kept apart from c too: no constraint
                        links.append((y, c))
                        owners.append(k)
                        kept_from.append(x)
        return links, owners, kept_from

    def _scores(self, pairs: list) -> np.ndarray:
        """Expected VI improvement of answering each (a, b) pair: probability x impact."""
        size_a, size_b = (np.array([self.size[pair[side]] for pair in pairs]) for side in (0, 1))
        return self._probabilities(pairs) * merge_impact(size_a, size_b)

    def _alike(self, pairs: list) -> np.ndarray:
        """The merge model's probability of (a, b) pairs, barcodes included, before any floor."""
        records = [self._record(a, b) for a, b in pairs]
        return merge_probability(self._features(records), self.weights, record_code_offsets(records))

    def _record(self, a: int, b: int) -> tuple:
        """What the model reads of a pair: (rows of contacts.pairs, faces, boundary sum,
        the smaller segment's surface and size, the two barcodes)."""
        n, s, rows = self.edges[a][b]
        small = a if (self.size[a], a) <= (self.size[b], b) else b  # ties: the lower id, either way round
        return rows, n, s, self.surface[small], self.size[small], self.code.get(a, 0), self.code.get(b, 0)

    def _features(self, records) -> np.ndarray:
        return record_features(self.contacts.face_moments, self.membrane, records)

    def _refit(self) -> None:
        """Refit the logistic weights to the answers so far (pulled towards the defaults; a
        learned membrane feature's weight towards 0, loosely) and re-score every open pair."""
        records = [record for record, _ in self.answers]
        features = self._features(records)
        learned = features.shape[1] + 1 - GEOMETRY
        prior = np.r_[self.prior[:GEOMETRY], np.zeros(learned)]
        strength = np.r_[np.ones(GEOMETRY), np.full(learned, LEARNED_WEIGHT_PRECISION)]
        accepted = np.array([accept for _, accept in self.answers])
        self.weights = fit_weights(features, accepted, prior, strength, record_code_offsets(records))
        self.refitted_at = len(self.answers)
        self._rebuild()

    def _answered(self, a: int, b: int, accept: bool) -> None:
        if b in self.edges.get(a, {}) and b not in self.cannot.get(a, ()):  # what the model can learn from
            rows, *rest = self._record(a, b)
            self.answers.append(((list(rows), *rest), bool(accept)))  # its own rows: merges extend the edge's
        self.asked.append(((a, b), bool(accept)))
        if accept:
            self._merge(a, b)
        else:
            self._keep_apart(a, b)

    def _push(self, pairs) -> None:
        """Score (a, b) pairs (one batch) and queue them; their earlier entries no longer count."""
        pairs = [] if self.quiet else list(pairs)
        if not pairs:
            return
        for score, (a, b) in zip(self._scores(pairs).tolist(), pairs):
            key = (min(a, b), max(a, b))
            self.live[key] = token = next(self.tokens)
            self.lowered.discard(key)
            heapq.heappush(self.heap, (-score, a, b, token))

    def _pop_lowered(self) -> list:
        """The lowered pairs at the top of the heap, taken off it (to be re-scored in one batch)."""
        pairs = []
        while self.heap and (min(self.heap[0][1:3]), max(self.heap[0][1:3])) in self.lowered:
            _, a, b, token = heapq.heappop(self.heap)
            if self._live(a, b, token):
                pairs.append((a, b))
        return pairs

    def _live(self, a, b, token) -> bool:
        """Whether a heap entry still counts: its pair is open and it is the pair's latest entry."""
        return (self.live.get((min(a, b), max(a, b))) == token and self.parent.get(a, a) == a
                and self.parent.get(b, b) == b and b not in self.cannot.get(a, ()))

    def _rebuild(self) -> None:
        """Score every open pair at once (after a refit every score changes)."""
        pairs = [(a, b) for a, neighbours in self.edges.items() for b in neighbours
                 if a < b and b not in self.cannot.get(a, ())]
        self.heap, self.live, self.lowered = [], {}, set()
        self._push(pairs)

    def _keep_apart(self, a: int, b: int) -> None:
        """Remember that a and b are two cells. The pairs of a with each y touching b (and of b
        with those touching a) are less likely now (_probabilities): re-scored when they reach the
        top. If y was kept apart from b before, p(a~y) was lowered through b: it rises, at once."""
        self.cannot.setdefault(a, set()).add(b)
        self.cannot.setdefault(b, set()).add(a)
        rising = []
        for x, other in ((a, b), (b, a)):
            for y in self.edges[x].keys() & self.edges[other].keys():
                if y in self.cannot[other] and y not in self.cannot[x]:
                    rising.append((x, y))
                elif y not in self.cannot[x]:
                    self.lowered.add((min(x, y), max(x, y)))
        self._push(rising)

    def _merge(self, a: int, b: int) -> None:
        if self.size[b] > self.size[a]:
            a, b = b, a  # the bigger segment keeps its id: fewer edges to move
        n_ab = self.edges.setdefault(a, {}).pop(b, [0])[0]  # 0: merged by hand without touching
        self.cannot.get(a, set()).discard(b)  # kept apart earlier: the person changed their mind
        self.cannot.get(b, set()).discard(a)
        self.parent[b] = a
        self.size[a] += self.size.pop(b)
        self.surface[a] += self.surface.pop(b) - 2 * n_ab  # their shared faces are inside now
        code = self.code.pop(b, 0)
        if code and not self.code.get(a):
            self.code[a] = code
        for x in self.cannot.pop(b, set()):
            self.cannot[x].discard(b)
            self.cannot[x].add(a)
            self.cannot.setdefault(a, set()).add(x)
        for x, (n, s, rows) in self.edges.pop(b, {}).items():
            if x == a:
                continue
            del self.edges[x][b]
            edge = self.edges[a].setdefault(x, [0, 0.0, []])
            edge[0] += n
            edge[1] += s
            edge[2].extend(rows)
            self.edges[x][a] = edge
        self._push((a, x) for x in self.edges[a] if x not in self.cannot.get(a, ()))

    def decisions(self) -> int:  # answers given (taken-back ones not counted)
        return len(self.answers)

    def answers_table(self) -> pd.DataFrame:
        """One row per answer: the model's inputs as they are now (see merge_features) and accepted."""
        features = self._features([record for record, _ in self.answers])
        table = pd.DataFrame(features, columns=FEATURE_NAMES[:features.shape[1]])
        return table.assign(accepted=[accept for _, accept in self.answers])
