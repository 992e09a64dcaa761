"""The proofreading stage of the pipeline: a merge queue answered by a callback, its merges
applied to the labels chunk by chunk (or through an Editor, to keep an edit log)."""

from __future__ import annotations

from dataclasses import dataclass

import dask.array as da
import numpy as np
import pandas as pd

from .chunked_labels import relabel
from .proofreading_queue import MergeQueue


@dataclass
class ProofreadResult:
    labels: object            # the proofread segmentation: numpy, or dask when the input was dask
    mapping: pd.DataFrame     # segment (id before proofreading) -> label (its id after)
    answers: pd.DataFrame     # one row per decision: a, b, probability, accepted
    exhausted: bool           # the queue had nothing left to ask

    @property
    def decisions(self) -> int:
        return len(self.answers)

    @property
    def accepted(self) -> int:
        return int(self.answers["accepted"].sum()) if len(self.answers) else 0


def answer_queue(contacts, decisions: int | None, answer, weights=None, learn: bool = True, faces=None, codes=None):
    """(mapping, answers, exhausted): `answer` asked about the best pair `decisions` times
    (None: until the queue is empty), every answer re-ranking the queue (and teaching it
    membranes, given `faces`; weighing pairs by their barcodes, given `codes`)."""
    queue = MergeQueue(contacts, weights=weights, learn=learn, faces=faces, codes=codes)
    rows, exhausted = [], False
    while decisions is None or len(rows) < decisions:
        pair = queue.next()
        if pair is None:
            exhausted = True
            break
        accept = bool(answer(pair))
        queue.answer(pair, accept)
        rows.append((pair["a"], pair["b"], pair["probability"], accept))
    ids = contacts.segments.index.to_numpy(np.int64)
    mapping = pd.DataFrame({"segment": ids, "label": queue.mapping(ids)})
    return mapping, pd.DataFrame(rows, columns=["a", "b", "probability", "accepted"]), exhausted


def segment_codes(table: pd.DataFrame) -> dict | None:
    """Each segment's code (label -> code_index, 0: none) from a decoding's table; None if it has none."""
    if not {"label", "code_index"} <= set(table.columns):
        return None
    return dict(zip(table["label"].astype(int).tolist(), table["code_index"].astype(int).tolist()))


def relabel_segments(labels, chunked: da.Array, mapping: pd.DataFrame):
    """Each segment to its merged id, block by block; numpy in, numpy out. Merged segments
    keep an id they had (the queue's root), so untouched segments keep theirs."""
    # relabel wants its keys sorted; contact_table gives the segment ids sorted already.
    out = relabel(chunked, mapping["segment"].to_numpy(), mapping["label"].to_numpy(),
                  dtype=np.dtype(labels.dtype))
    return out if isinstance(labels, da.Array) else out.compute()


def merge_with_log(labels, mapping: pd.DataFrame, log_path) -> np.ndarray:
    """The same merges made by an Editor, one per merged group, recorded in `log_path`
    (the Editor edits in memory: the labels are loaded)."""
    from .proofreading import Editor

    edited = np.array(labels)
    editor = Editor(edited, log_path=log_path)
    try:
        for label, group in mapping.groupby("label", sort=True)["segment"]:
            others = [int(s) for s in group if s != label]
            if others:
                editor.merge([int(label)] + others)
    finally:
        editor.close()
    return edited
