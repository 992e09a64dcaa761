"""Proofreading: exact segmentation edits with undo/redo and a crash-safe edit log.

    ed = Editor(labels, image=em, log_path="edits.wbelog")   # edits `labels` in place
    ed.merge([12, 40])                  # 40 becomes 12
    ed.split(12, [(5, 60, 61)], [(9, 80, 30)])   # part with the first seeds keeps 12
    ed.delete(7); ed.relabel(12, 500); ed.undo(); ed.redo()
    ed.keep_apart(12, 33)               # a "no" to "merge?": kept, undoable, no voxel changes
    labels = replay(original, "edits.wbelog")   # the same labels, rebuilt from the log
    suspects(labels, image=em)          # ranked likely errors
    metrics(labels, truth)              # VI split/merge, adapted Rand error, ...

Every edit is recorded as the voxels it changed (positions in a box, old and new values),
so undo, redo and replay are exact whatever produced the edit (a watershed, napari's
brush). An edit is acknowledged only once its record is on disk.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .proofreading_index import box_of_points, label_boxes, union
from .proofreading_log import (
    Change,
    EditLog,
    LogError,
    check_header,
    decode_change,
    encode_change,
    new_record,
    read_log,
)
from .proofreading_metrics import metrics
from .proofreading_split import split_parts
from .proofreading_suspects import suspects

__all__ = ["EditError", "Editor", "LogError", "metrics", "replay", "suspects"]

EDIT_KINDS = ("merge", "split", "delete", "relabel", "paint", "keep_apart")
SPLIT_MARGIN = 4  # voxels of image read around a segment being split


class EditError(ValueError):
    """An edit that cannot be made as asked; the labels are left unchanged."""


@dataclass
class _Edit:
    record: dict  # what the log holds, without the voxels
    change: Change
    index_before: dict = field(default_factory=dict)  # label -> (box, count) or None
    index_after: dict = field(default_factory=dict)


class Editor:
    """Edits a label volume in place (numpy, or a writable zarr array), keeping a history.

    image: the EM (or boundary) image used by split; same shape as labels.
    log_path: the edit log file (created; an existing log is continued with `resume`).
    membranes: "dark" (EM) or "bright" (a membrane stain or boundary map) for split.
    """

    def __init__(self, labels, image=None, log_path=None, *, membranes: str = "dark", user: str | None = None):
        _check_labels(labels)
        if image is not None and tuple(image.shape) != tuple(labels.shape):
            raise EditError(f"The image has shape {tuple(image.shape)} but the labels {tuple(labels.shape)}; "
                            "split needs the image the labels were drawn on.")
        self.labels, self.image, self.membranes, self.user = labels, image, membranes, user
        self.boxes, self.counts = label_boxes(labels)
        self._next_id = max(self.boxes, default=0) + 1
        self._done: list[_Edit] = []
        self._undone: list[_Edit] = []
        self._number = 0
        self.log = EditLog.create(log_path, labels) if log_path is not None else None

    @classmethod
    def resume(cls, original, log_path, image=None, **kwargs) -> Editor:
        """Replay `log_path` onto `original` (edited in place) and keep appending to it."""
        header, records, valid, problem = read_log(log_path)
        check_header(header, original, log_path)
        if problem:
            warnings.warn(problem, stacklevel=2)
        editor = cls(original, image, None, **kwargs)
        editor._replay(records, header["dtype"])
        editor.log = EditLog(log_path, header, valid_bytes=valid)
        return editor

    # -- edits ---------------------------------------------------------------------------
    def merge(self, ids, into: int | None = None) -> int:
        """Merge two or more labels into one: `into`, else the first of `ids`. Returns it."""
        ids = [int(i) for i in ids]
        if not ids:
            raise EditError("Merging needs two or more different labels; got none (select segments first).")
        into = ids[0] if into is None else int(into)
        others = sorted(set(ids) - {into})
        if 0 in ids or into == 0:
            raise EditError("Background (0) cannot be merged; pick two or more segments.")
        if not others:
            raise EditError(f"Merging needs two or more different labels; got {ids}.")
        self._require(set(others) | {into})
        box = union(*(self.boxes[i] for i in others))
        region = self._read(box)
        index = np.flatnonzero(np.isin(region, others))
        change = Change(box, index, region.reshape(-1)[index], np.array([into], region.dtype))
        self._commit("merge", change, labels=ids, into=into)
        return into

    def preview_split(self, label: int, *seeds, compactness: float | None = None):
        """(box, parts) of a split without making it: parts 1..n inside the box, 0 elsewhere."""
        label = int(label)
        self._require({label})
        if len(seeds) < 2:
            raise EditError("A split needs seeds for at least two parts.")
        # a margin of the image around the segment, so the membrane map is not cut at its edge
        box = self._padded(union(self.boxes[label], *(box_of_points(s) for s in seeds if len(s))), SPLIT_MARGIN)
        region = self._read(box)
        mask = region == label
        local = [self._local_seeds(label, s, box, mask, n) for n, s in enumerate(seeds, start=1)]
        image = None if self.image is None else np.asarray(self.image[_slices(box)])
        parts = split_parts(mask, local, image, membranes=self.membranes, compactness=compactness)
        parts[mask & (parts == 0)] = 1  # voxels no seed reaches stay with the label
        empty = [n for n in range(1, len(seeds) + 1) if not (parts == n).any()]
        if empty:
            raise EditError(f"Part(s) {empty} came out empty; move their seeds.")
        return box, parts

    def split(self, label: int, *seeds, compactness: float | None = None) -> list[int]:
        """Split `label` by seed groups (one list of (z, y, x) voxels per part). The first
        part keeps the label; the others get new ids, returned in order."""
        box, parts = self.preview_split(label, *seeds, compactness=compactness)
        new_ids = [int(label)] + [self._take_id() for _ in seeds[1:]]
        index = np.flatnonzero(parts.reshape(-1) > 1)
        values = np.asarray(new_ids, self.labels.dtype)[parts.reshape(-1)[index] - 1]
        change = Change(box, index, np.array([label], self.labels.dtype), values)
        self._commit("split", change, labels=[int(label)], new_ids=new_ids,
                     seeds=[np.asarray(s, dtype=int).reshape(-1, 3).tolist() for s in seeds])
        return new_ids

    def delete(self, label: int) -> None:
        """Set a segment to background."""
        self._replace(int(label), 0, "delete")

    def relabel(self, label: int, new_id: int | None = None) -> int:
        """Give a segment another id (a fresh one by default); the new id must be unused."""
        new_id = self._take_id() if new_id is None else int(new_id)
        if new_id == 0 or new_id in self.boxes:
            raise EditError(f"Label {new_id} is {'background' if new_id == 0 else 'in use'}; "
                            "merge to join segments, or pick an unused id.")
        self._replace(int(label), new_id, "relabel")
        self._next_id = max(self._next_id, new_id + 1)
        return new_id

    def keep_apart(self, a: int, b: int) -> None:
        """Record that two segments are two cells (a proofreader's "no" to "merge?"). No voxel
        changes, but it is an edit like the others (logged, undone, redone), so the answer is
        not lost with the review queue and can be taken back; see `kept_apart`."""
        a, b = int(a), int(b)
        if a == b or 0 in (a, b):
            raise EditError(f"Keeping apart needs two different segments, not background; got {a} and {b}.")
        self._require({a, b})
        nothing = np.zeros(0, self.labels.dtype)
        self._commit("keep_apart", Change((0,) * 6, np.zeros(0, np.int64), nothing, nothing), labels=[a, b])

    @property
    def kept_apart(self) -> list[tuple[int, int]]:
        """The pairs of segments kept apart by edits in effect, named by their ids now (a
        segment merged into another since is that one; pairs with a deleted segment are gone)."""
        return sorted(set(self.kept_apart_by_edit().values()))

    def kept_apart_by_edit(self) -> dict[int, tuple[int, int]]:
        """Each keep-apart edit in effect (its id) -> its pair as `kept_apart` names it."""
        pairs, holders = {}, {}  # holders: id -> (edit, side) of every place it names
        for record in self.history:
            kind, labels = record["kind"], record.get("labels", [])
            if kind == "keep_apart":
                pairs[record["id"]] = list(labels)
                for side, label in enumerate(labels):
                    holders.setdefault(label, []).append((record["id"], side))
            elif kind in ("merge", "relabel"):
                target = record["into"] if kind == "merge" else record["new_id"]
                for label in set(labels) - {target}:
                    for edit, side in holders.pop(label, []):
                        pairs[edit][side] = target
                        holders.setdefault(target, []).append((edit, side))
        return {edit: (min(a, b), max(a, b)) for edit, (a, b) in pairs.items()
                if a != b and a in self.boxes and b in self.boxes}

    def record_paint(self, indices, old_values, new_values=None) -> None:
        """Record voxels that napari's brush, eraser or fill changed (from a Labels layer's
        paint event): (z, y, x) index arrays, their old values and their new values
        (read from the labels when not given). A voxel painted twice in one stroke keeps
        its first old value and its last new value."""
        points = np.stack([np.asarray(i, dtype=np.int64).reshape(-1) for i in indices], axis=1)
        if not len(points):
            return
        box = box_of_points(points)
        shape = np.subtract(box[3:], box[:3])
        flat = np.ravel_multi_index(tuple((points - box[:3]).T), shape)
        order = np.argsort(flat, kind="stable")
        flat, old = flat[order], np.asarray(old_values, self.labels.dtype).reshape(-1)[order]
        first = np.r_[True, flat[1:] != flat[:-1]]
        last = np.r_[flat[1:] != flat[:-1], True]
        if new_values is None:
            new = self._read(box).reshape(-1)[flat[first]]
        else:
            new = np.broadcast_to(np.asarray(new_values, self.labels.dtype).reshape(-1), order.shape)[order][last]
        flat, old = flat[first], old[first]
        keep = old != new
        change = Change(box, flat[keep], old[keep], new[keep])
        painted_now = new_values is None or np.array_equal(self._read(box).reshape(-1)[change.index], change.new)
        touched = np.unique(np.r_[change.old, change.new])  # the segments the stroke grew or cut into
        self._commit("paint", change, applied=painted_now, labels=[int(v) for v in touched if v])

    # -- history -------------------------------------------------------------------------
    def undo(self) -> dict | None:
        """Undo the last edit; returns its record (None when there is nothing to undo)."""
        if not self._done:
            return None
        edit = self._done.pop()
        edit.change.apply(self.labels, edit.change.old)
        self._set_index(edit.index_before)
        self._undone.append(edit)
        self._log(new_record(self._take_number(), "undo", of=edit.record["id"]))
        return edit.record

    def redo(self) -> dict | None:
        if not self._undone:
            return None
        edit = self._undone.pop()
        edit.change.apply(self.labels, edit.change.new)
        self._set_index(edit.index_after)
        self._done.append(edit)
        self._log(new_record(self._take_number(), "redo", of=edit.record["id"]))
        return edit.record

    @property
    def history(self) -> list[dict]:
        """Records of the edits in effect, oldest first (without their voxels)."""
        return [edit.record for edit in self._done]

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    def close(self) -> None:
        if self.log is not None:
            self.log.close()

    # -- internals -----------------------------------------------------------------------
    def _replace(self, label: int, value: int, kind: str) -> None:
        if label == 0:
            raise EditError(f"Background (0) cannot be {kind}d.")
        self._require({label})
        box = self.boxes[label]
        region = self._read(box)
        index = np.flatnonzero(region.reshape(-1) == label)
        change = Change(box, index, np.array([label], region.dtype), np.array([value], region.dtype))
        self._commit(kind, change, labels=[label], **({"new_id": value} if value else {}))

    def _commit(self, kind, change: Change, applied: bool = False, record: dict | None = None, **fields) -> None:
        """Make the change (unless napari already did), update the box index, log it."""
        if record is None:
            record = new_record(self._take_number(), kind, user=self.user, **fields)
        after = self._index_after(change)
        before = {label: self._index_entry(label) for label in after}
        if not applied:
            change.apply(self.labels, change.new)
        self._set_index(after)
        try:
            self._log(record | encode_change(change))
        except BaseException:
            change.apply(self.labels, change.old)  # not on disk: not acknowledged, so not made
            self._set_index(before)
            raise
        self._next_id = max([self._next_id] + [label + 1 for label in after])
        self._done.append(_Edit(record, change, before, after))
        self._undone.clear()

    def _index_after(self, change: Change) -> dict:
        """Box and voxel count of every label the change touches (None: gone). Boxes only
        grow, so a label that lost voxels keeps a box that still holds all of them."""
        new = np.broadcast_to(change.new, change.index.shape)
        old = np.broadcast_to(change.old, change.index.shape)
        shape = np.subtract(change.box[3:], change.box[:3])
        after = {}
        for value in np.unique(np.concatenate([old, new])).tolist():
            if value == 0:
                continue
            gained = change.index[new == value]
            count = self.counts.get(value, 0) + len(gained) - int(np.count_nonzero(old == value))
            box = self.boxes.get(value)
            if len(gained):
                where = np.stack(np.unravel_index(gained, shape), axis=1) + np.asarray(change.box[:3])
                box = box_of_points(where) if box is None else union(box, box_of_points(where))
            after[value] = (box, count) if count > 0 else None
        return after

    def _replay(self, records: list[dict], dtype) -> None:
        """Rebuild the history from log records (their stored voxels, not recomputed)."""
        for record in records:
            self._number = max(self._number, int(record["id"]))
            if record["kind"] == "undo":
                self.undo()
            elif record["kind"] == "redo":
                self.redo()
            elif record["kind"] in EDIT_KINDS:
                bare = {k: v for k, v in record.items() if k not in ("box", "n", "index", "old", "new")}
                self._commit(record["kind"], decode_change(record, dtype), record=bare)

    def _padded(self, box, margin: int) -> tuple[int, ...]:
        shape = self.labels.shape
        return tuple(max(0, b - margin) for b in box[:3]) + tuple(min(s, b + margin) for b, s in zip(box[3:], shape))

    def _index_entry(self, label: int):
        return (self.boxes[label], self.counts[label]) if label in self.boxes else None

    def _set_index(self, entries: dict) -> None:
        for label, entry in entries.items():
            if entry is None:
                self.boxes.pop(label, None)
                self.counts.pop(label, None)
            else:
                self.boxes[label], self.counts[label] = entry

    def _log(self, record: dict) -> None:
        if self.log is not None:
            self.log.append(record)

    def _read(self, box) -> np.ndarray:
        return np.array(self.labels[_slices(box)])

    def _require(self, ids) -> None:
        missing = sorted(i for i in ids if i not in self.boxes)
        if missing:
            raise EditError(f"Label(s) {missing} are not in the volume (already merged or deleted?).")

    def _local_seeds(self, label, points, box, mask, part) -> np.ndarray:
        points = np.asarray(points, dtype=np.int64).reshape(-1, 3)
        if not len(points):
            raise EditError(f"Part {part} of the split has no seed; give each part at least one voxel.")
        local = points - np.asarray(box[:3])
        inside = np.all((local >= 0) & (local < mask.shape), axis=1)
        outside = points[~inside | ~mask[tuple(np.clip(local, 0, np.asarray(mask.shape) - 1).T)]]
        if len(outside):
            raise EditError(f"Seed(s) {outside.tolist()} of part {part} are not inside segment {label}; "
                            "place split seeds on the segment being split.")
        return local

    def _take_id(self) -> int:
        limit = np.iinfo(self.labels.dtype).max
        if self._next_id > limit:
            raise EditError(f"No free label id left in {self.labels.dtype}; convert the labels to uint64.")
        self._next_id += 1
        return self._next_id - 1

    def _take_number(self) -> int:
        self._number += 1
        return self._number


def replay(original, log_path) -> np.ndarray:
    """The labels after every acknowledged edit in `log_path`, applied to a copy of `original`.
    A record cut off by a crash is left out with a warning that says so."""
    labels = np.array(original)
    Editor.resume(labels, log_path).close()
    return labels


def _check_labels(labels) -> None:
    if type(labels).__module__.startswith("dask"):
        raise EditError("Dask arrays are read-only: open the labels as a writable zarr array "
                        "(zarr.open(path, mode='r+')) or load them into memory (np.asarray) to edit them.")
    if np.dtype(labels.dtype).kind not in "iu" or len(labels.shape) != 3:
        raise EditError(f"Labels must be a 3D integer volume (z, y, x); got {labels.dtype} of shape "
                        f"{tuple(labels.shape)}.")


def _slices(box) -> tuple[slice, ...]:
    return tuple(slice(a, b) for a, b in zip(box[:3], box[3:]))

