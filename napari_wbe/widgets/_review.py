"""The review queue of the proofreading widget: ranked suspects, flown to one at a time,
answered with Y / N; merge suggestions re-rank after every answer (MergeQueue)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from napari.utils.colormaps import DirectLabelColormap

from ..proofreading import suspects
from ..proofreading_barcode_checks import barcode_evidence
from ..proofreading_contacts import contact_table
from ..proofreading_faces import face_sample
from ..proofreading_queue import MergeQueue
from ._layers import viewer_camera

MERGE_ROWS = 50  # merge suggestions shown at a time (the queue holds them all)


class ReviewQueue:
    """Mixin for ProofreadingWidget: needs its layer, editor, queue table, status, _edit
    and begin_split."""

    merge_queue: MergeQueue | None = None
    _base: dict = {}  # the edits in effect when Find suspects read the labels (id -> record)
    _queue_edits: dict = {}  # edit id -> the queue answers it gave, [((a, b), accepted)]
    _taken_back: dict = {}  # edit id -> those answers while the edit is undone, for redo
    _code_names: dict = {}  # barcode index -> name, when channels were chosen
    _full_colormap = None

    def find_suspects(self):
        labels = np.asarray(self.layer.data)
        try:
            image, boundary = (_on_grid(chosen.value, labels.shape) for chosen in (self.image_layer, self.boundary_layer))
            channels = _barcode_channels(self.barcode_layers.value, labels.shape)
        except ValueError as err:
            self.status.done(str(err), error=True)
            return None
        kept_apart = self.editor.kept_apart_by_edit() if self.editor is not None else {}
        base = {} if self.editor is None else {record["id"]: record for record in self.editor.history}

        def work(report):
            contacts = contact_table(labels, image=image, boundary=boundary)
            evidence = None if channels is None else barcode_evidence(labels, channels)  # codebook learned
            # With EM the queue also learns from the answers what membranes look like here.
            faces = None if image is None else face_sample(labels, image, contacts.pairs)
            queue = MergeQueue(contacts, faces=faces, train_later=True,
                               codes=None if evidence is None else evidence.segments["code"])
            told = {}  # keep-apart edit -> the queue's answer, for undo
            for edit, (a, b) in kept_apart.items():  # answered before (this session or one before it)
                asked = len(queue.asked)
                queue.answer({"a": a, "b": b}, False)  # ignored unless they touch and are not kept apart yet
                if len(queue.asked) > asked:
                    told[edit] = queue.asked[asked:]
            return suspects(labels, contacts=contacts, evidence=evidence), queue, contacts, evidence, base, told

        return self.start_job(work, "Finding suspects", self._found)

    def _found(self, found) -> None:
        table, self.merge_queue, contacts, evidence, self._base, self._queue_edits = found
        self._code_names = {} if evidence is None else \
            dict(zip(evidence.segments["code"].tolist(), evidence.segments["code_name"].tolist()))
        pairs = contacts.pairs
        self._contact_at = dict(zip(zip(pairs["a"].tolist(), pairs["b"].tolist()), pairs[["z", "y", "x"]].to_numpy()))
        self._total = max(int(contacts.segments["size"].sum()), 1)
        self.queue.set_rows(table)
        self._taken_back = {}
        earlier = self.merge_queue.decisions()
        if earlier:  # pairs kept apart before (the edit history) are not asked again
            self._rerank(select_first=True)
        source = {"boundary map": "the boundary map", "EM": "the EM"}.get(contacts.boundary_source)
        self.status.done(f"{len(table)} suspects, most likely errors first; merge suggestions re-rank "
                         "after every answer" + (f"; membranes read from {source}." if source else
                                                 "; pick an EM image or a boundary map to rank by membranes too.") +
                         (f" {earlier} pair(s) kept apart earlier are not asked again." if earlier else ""))
        if self.merge_queue.membranes_due:
            self._learn_membranes()

    def _rerank(self, select_first: bool = False) -> None:
        """Merge suggestions from the queue, which learns from each answer; other rows stay. The
        current row stays current (no flight) unless select_first."""
        others = self.queue.rows[self.queue.rows["kind"] != "merge?"]
        rows, reshaped = [], self._reshaped()
        for pair in self.merge_queue.top(MERGE_ROWS):
            a, b = sorted((pair["a"], pair["b"]))
            if a not in self.editor.boxes or b not in self.editor.boxes or {a, b} & reshaped:
                continue
            z, y, x = self._contact_at.get((a, b), _box_middle(self.editor.boxes[a], self.editor.boxes[b]))
            reason = (f"touch over {pair['contact']} faces; mean boundary {pair['boundary_mean']:.2f}; "
                      f"contact flatness {pair['flatness']:.2f}; ")
            if "learned_membrane" in pair:
                reason += f"learned membrane {pair['learned_membrane']:.2f}; "
            codes = [self._code_names.get(code, "") for code in pair.get("codes", ())]
            if len(codes) == 2 and all(codes):
                reason += f"same barcode {codes[0]}; " if codes[0] == codes[1] else f"barcodes {codes[0]} / {codes[1]}; "
            if "looks_like" in pair:
                like = pair["looks_like"]
                reason += (f"{like['segment']} looks like {like['like']} ({like['probability']:.2f}), "
                           f"kept apart from {like['kept_apart_from']}; ")
            rows.append({"kind": "merge?", "labels": (a, b), "z": z, "y": y, "x": x,
                         "probability": pair["probability"], "score": pair["score"] / self._total,
                         "reason": reason + f"p = {pair['probability']:.2f}"})
        table = pd.concat([pd.DataFrame(rows), others], ignore_index=True) if rows else others
        self.queue.set_rows(table.sort_values("score", ascending=False, kind="stable"), select_first)

    def forget_queue(self) -> None:
        """Editing stops (or moves to another layer): the queue and its rows were of those labels."""
        self.merge_queue, self._base, self._queue_edits, self._taken_back = None, {}, {}, {}
        self.queue.set_rows(pd.DataFrame(columns=["kind", "labels", "z", "y", "x", "score", "reason"]))

    def _focus(self, row: pd.Series) -> None:
        """Centre on the suspect and show only its segments."""
        if self.layer is None:
            return
        world = self.layer.data_to_world([row["z"], row["y"], row["x"]])
        self._viewer.dims.set_point(range(3), world)
        viewer_camera(self._viewer).center = world
        if self._full_colormap is None:
            self._full_colormap = self.layer.colormap
        colours = {None: "transparent"} | {int(i): c for i, c in zip(row["labels"], ("#ff4fd8", "#3cf0ff", "#ffd23c"))}
        self.layer.colormap = DirectLabelColormap(color_dict=colours)

    def show_all(self) -> None:
        if self._full_colormap is not None and self.layer is not None:
            self.layer.colormap = self._full_colormap
        self._full_colormap = None

    def accept(self) -> None:
        self._decide(True)

    def reject(self) -> None:
        self._decide(False)

    def asks_about(self, ids) -> bool:
        """Whether the merge queue has these two segments, as they are, as an open pair."""
        queue = self.merge_queue
        return self._knows(ids) and len(ids) == 2 and ids[1] in queue.edges.get(ids[0], {}) and \
            ids[1] not in queue.cannot.get(ids[0], ())

    def _knows(self, ids) -> bool:
        """Whether the merge queue has each of these segments as it is now."""
        queue = self.merge_queue
        return queue is not None and all(queue.segment_of(i) == i and i in queue.size for i in ids) and \
            not set(ids) & self._reshaped()

    def merge_segments(self, ids: list) -> bool:
        """Merge two or more segments (a review row, or segments clicked); see `_answer`."""
        return self._answer(ids, True)

    def _answer(self, ids: list, accepted: bool) -> bool:
        """A yes (merge two or more segments) or a no (keep two apart), as an edit. If the merge
        queue knows the segments as they are, it hears of it: it learns from it, it names the
        merged segment, and undo takes the answer back from it too. False if the editor refused."""
        queue, told = self.merge_queue, len(set(ids)) >= 2 and self._knows(ids)
        asked = len(queue.asked) if told else 0
        into = None
        if not told:  # the bigger segment keeps its id, as in the queue (too few ids: the editor says so)
            into = max(ids, key=lambda i: self.editor.counts.get(i, 0), default=None)
        elif accepted:
            into = queue.join(ids)
        else:
            queue.answer({"a": ids[0], "b": ids[1]}, False)

        def edit(ed) -> str:
            if accepted:
                message = f"Merged {ids} into {ed.merge(ids, into=into)}."
            else:
                ed.keep_apart(*ids)
                message = f"Kept {ids[0]} and {ids[1]} apart; next suspect."
            if told:  # before the edit's re-rank: the queue knows these segments as they are now
                self._queue_edits[ed.history[-1]["id"]] = queue.asked[asked:]
            return message

        if self._edit(edit):
            if told and queue.membranes_due:
                self._learn_membranes()
            return True
        for pair, answer in reversed(queue.asked[asked:] if told else []):
            queue.take_back(*pair, accepted=answer)
        return False

    def _reshaped(self) -> set:
        """Segments whose voxels changed since Find suspects by edits the queue was not told of
        (splits, paint strokes, merges of segments it did not know, edits from before undone or
        redone): their contacts in the queue are out of date, so their merge rows wait for the
        next Find suspects."""
        now = {record["id"]: record for record in self.editor.history} if self.editor is not None else {}
        changed = [now.get(edit) or self._base[edit] for edit in (now.keys() ^ self._base.keys())
                   if edit not in self._queue_edits]
        return {label for record in changed if record["kind"] != "keep_apart" for label in record.get("labels", [])}

    def _queue_undone(self, record: dict) -> tuple | None:
        """An undone edit that was an answer to the queue (a "no" from before this queue too, told
        to it at Find suspects): the queue forgets it too. Returns the pair it is asked about again."""
        answers = self._queue_edits.get(record["id"])
        if self.merge_queue is None or not answers:
            return None
        for pair, accepted in reversed(answers):
            self.merge_queue.take_back(*pair, accepted=accepted)
        self._taken_back[record["id"]] = answers
        return tuple(sorted(answers[0][0]))

    def _queue_redone(self, record: dict) -> bool:
        """A redone edit whose answers the queue forgot at its undo: it is given them again."""
        answers = self._taken_back.pop(record["id"], [])
        for (a, b), accepted in answers:
            self.merge_queue.answer({"a": a, "b": b}, accepted)
        return bool(answers)

    def _decide(self, accepted: bool) -> None:
        row = self.queue.current()
        if row is None or self.editor is None:
            self.status.say("Pick a row of the review queue first.", error=True)
            return
        ids = [int(i) for i in row["labels"] if int(i) in self.editor.boxes]
        if accepted and row["kind"] == "split?":
            self.begin_split(ids[0])
        elif accepted and len(ids) >= 2:
            self.merge_segments(ids)
        elif accepted and ids:
            self._edit(lambda ed: (ed.delete(ids[0]), f"Deleted {ids[0]}.")[1])
        elif self.asks_about(ids):
            self._answer(ids, False)
        else:
            self.status.say("Left as it is; next suspect.")
        if row["kind"] == "merge?":
            self.queue.select_first()  # the best suggestion now
        else:
            self.queue.done_with_current()

    def _learn_membranes(self) -> None:
        """Train on the answers in the background; answering goes on meanwhile."""
        queue, train = self.merge_queue, self.merge_queue.membrane_trainer()
        queue.membranes_due = False
        n = queue.decisions()

        def learned(result) -> None:
            if queue is self.merge_queue:  # not a queue from an older Find suspects
                queue.use_membranes(result)
                self._rerank()  # the row being looked at stays
                self.status.done(f"Learned what membranes look like here from your {n} answers; merge "
                                 "suggestions re-ranked." if result is not None else
                                 "Membranes need both merges and rejections to learn from; re-ranked.")

        self.start_job(lambda report: train(), f"Learning membranes from {n} answers", learned)


def _on_grid(layer, shape):
    """The layer's voxels (None without a layer) if they share the labels' grid."""
    if layer is None:
        return None
    data = _full_resolution(layer)
    if tuple(data.shape) != tuple(shape):
        raise ValueError(f"'{layer.name}' is {tuple(data.shape)} (z, y, x) but the labels are {tuple(shape)}: "
                         "pick a layer on the labels' grid, or none.")
    return np.asarray(data)


def _full_resolution(layer):
    return layer.data[0] if layer.multiscale else layer.data


def _barcode_channels(layers, shape):
    """The chosen tag channels as one (c, z, y, x) array on the labels' grid; None if none chosen."""
    if not layers:
        return None
    if len(layers) == 1 and layers[0].ndim == 4:
        data = _full_resolution(layers[0])
        if tuple(data.shape[1:]) != tuple(shape):
            raise ValueError(f"'{layers[0].name}' is {tuple(data.shape)} (channels, z, y, x) but the labels are "
                             f"{tuple(shape)}: pick tag channels on the labels' grid.")
        return np.asarray(data)
    if len(layers) < 2 or any(layer.ndim != 3 for layer in layers):
        raise ValueError("Pick the barcode channels as one 4-D layer (channels first) or several 3-D layers, one "
                         f"per tag; got {', '.join(f'{layer.name} ({layer.ndim}-D)' for layer in layers)}.")
    return np.stack([_on_grid(layer, shape) for layer in layers])


def _box_middle(*boxes) -> tuple[int, int, int]:
    """The middle of where boxes overlap (or of their union): near where segments meet."""
    low = np.max([b[:3] for b in boxes], axis=0)
    high = np.min([b[3:] for b in boxes], axis=0)
    low, high = np.minimum(low, high), np.maximum(low, high)
    return tuple(int(v) for v in (low + high) // 2)
