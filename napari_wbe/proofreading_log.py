"""The edit log: append-only, one JSON line per edit, each flushed to disk (fsync) before
the edit is acknowledged, so a crash loses at most the edit being written.

    line 1:  {"format": "napari-wbe edit log", "version": 1, "shape": [...], "dtype": "uint32",
              "checksum": "...", "created": "..."}
    then:    {"id": 1, "time": ..., "user": ..., "kind": "merge", "labels": [...], ...,
              "box": [z0, y0, x0, z1, y1, x1], "index": b64, "old": b64, "new": b64, "crc": 123}

`index` lists the changed voxels as flat positions inside `box` (ascending, delta-coded),
`old` and `new` their values (zlib-compressed, base64). Undo and redo are records of their
own ({"kind": "undo"}), so the log is the whole history and `replay` can rebuild it.
A line that does not end in a newline or fails its CRC is a record cut off by a crash.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import json
import math
import os
import time
import zlib
from dataclasses import dataclass

import numpy as np

FORMAT = "napari-wbe edit log"
VERSION = 1
# Checksums read at most this many voxels (evenly strided): enough to tell volumes apart
# without reading a terabyte volume whole.
CHECKSUM_VOXELS = 16_000_000


class LogError(ValueError):
    """An edit log that cannot be used with these labels (or cannot be read at all)."""


@dataclass
class Change:
    """Voxels changed by one edit: flat positions inside `box` and their old and new values."""

    box: tuple[int, ...]  # z0, y0, x0, z1, y1, x1 (stop exclusive)
    index: np.ndarray  # int64, ascending, flat inside the box
    old: np.ndarray
    new: np.ndarray

    def slices(self) -> tuple[slice, ...]:
        n = len(self.box) // 2
        return tuple(slice(a, b) for a, b in zip(self.box[:n], self.box[n:]))

    def apply(self, labels, values: np.ndarray) -> None:
        """Write `values` (self.old or self.new) into the box of `labels`."""
        if not len(self.index):  # a decision that changes no voxel (keep apart)
            return
        region = np.array(labels[self.slices()])  # a contiguous copy, so its flat view is writable
        region.reshape(-1)[self.index] = values
        labels[self.slices()] = region


def checksum(labels) -> str:
    """Shape, dtype and a strided sample of the voxels, hashed."""
    shape = tuple(int(s) for s in labels.shape)
    step = max(1, math.ceil((math.prod(shape) / CHECKSUM_VOXELS) ** (1 / len(shape))))
    sample = np.ascontiguousarray(np.asarray(labels[tuple(slice(None, None, step) for _ in shape)]))
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((shape, str(sample.dtype), step)).encode())
    digest.update(sample.tobytes())
    return digest.hexdigest()


def _pack(array: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.ascontiguousarray(array).tobytes(), 1)).decode("ascii")


def _unpack(text: str, dtype) -> np.ndarray:
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=dtype).copy()


def encode_change(change: Change) -> dict:
    steps = np.diff(change.index, prepend=0).astype(np.uint32)  # sorted: small, compressible steps
    return {"box": [int(b) for b in change.box], "n": len(change.index), "index": _pack(steps),
            "old": _pack(change.old), "new": _pack(change.new)}


def decode_change(record: dict, dtype) -> Change:
    index = np.cumsum(_unpack(record["index"], np.uint32).astype(np.int64))
    return Change(tuple(record["box"]), index, _unpack(record["old"], dtype), _unpack(record["new"], dtype))


def _line(record: dict) -> bytes:
    body = json.dumps(record, separators=(",", ":"), sort_keys=True)
    crc = zlib.crc32(body.encode())
    return (body[:-1] + f',"crc":{crc}}}\n').encode()


def _parse(line: bytes) -> dict | None:
    """The record in a complete line, or None if it is cut off or damaged."""
    if not line.endswith(b"\n"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    crc = record.pop("crc", None)
    body = json.dumps(record, separators=(",", ":"), sort_keys=True)
    return record if crc == zlib.crc32(body.encode()) else None


class EditLog:
    """An open log file that edits are appended to."""

    def __init__(self, path, header: dict, valid_bytes: int | None = None):
        self.path = os.fspath(path)
        self.header = header
        self._file = open(self.path, "ab")
        if valid_bytes is not None and self._file.tell() > valid_bytes:
            self._file.truncate(valid_bytes)  # drop a record cut off by a crash (never acknowledged)
            self._file.seek(valid_bytes)

    @classmethod
    def create(cls, path, labels) -> EditLog:
        path = os.fspath(path)
        if os.path.exists(path) and os.path.getsize(path) > 0:
            raise LogError(
                f"The edit log {path} already exists. Continue it with Editor.resume(original_labels, log_path), "
                "or choose a new log file (an existing log is never overwritten)."
            )
        header = {"format": FORMAT, "version": VERSION, "shape": [int(s) for s in labels.shape],
                  "dtype": str(np.dtype(labels.dtype)), "checksum": checksum(labels),
                  "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        log = cls(path, header)
        log._write(header)
        _sync_folder(path)
        return log

    def append(self, record: dict) -> None:
        """Write one record and wait until it is on disk."""
        self._write(record)

    def _write(self, record: dict) -> None:
        self._file.write(_line(record))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def read_log(path) -> tuple[dict, list[dict], int, str | None]:
    """(header, records, bytes of intact records, problem): a damaged last record is
    reported in `problem` and left out; a damaged record before the end is an error."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise LogError(f"No edit log at {path}.")
    with open(path, "rb") as f:
        lines = f.readlines()
    if not lines:
        raise LogError(f"The edit log {path} is empty (not even a header); it was never written.")
    header = _parse(lines[0]) if lines[0].endswith(b"\n") else None
    if header is None or header.get("format") != FORMAT:
        raise LogError(f"{path} is not a napari-wbe edit log (its first line is not a log header).")
    if header.get("version", 0) > VERSION:
        raise LogError(f"{path} was written by a newer napari-wbe (log version {header['version']}); upgrade.")
    records, valid, problem = [], len(lines[0]), None
    for number, line in enumerate(lines[1:], start=1):
        record = _parse(line)
        if record is None:
            if number < len(lines) - 1:
                raise LogError(f"Record {number} of the edit log {path} is damaged, and records follow it; "
                               "the log cannot be trusted past it. Keep a copy and report this.")
            problem = (f"The last record of {path} (record {number}) was cut off, probably by a crash while "
                       "it was written; it was never acknowledged, so it is left out.")
            break
        records.append(record)
        valid += len(line)
    return header, records, valid, problem


def check_header(header: dict, labels, path) -> None:
    shape = [int(s) for s in labels.shape]
    if header["shape"] != shape or header["dtype"] != str(np.dtype(labels.dtype)):
        raise LogError(f"The edit log {path} belongs to labels of shape {header['shape']} ({header['dtype']}), "
                       f"not these ({shape}, {np.dtype(labels.dtype)}). Open the labels it was made on.")
    if header["checksum"] != checksum(labels):
        raise LogError(f"The edit log {path} was made on other labels (checksum differs): replay it onto the "
                       "original labels it started from, not onto edited or different ones.")


def new_record(number: int, kind: str, user: str | None = None, **fields) -> dict:
    return {"id": number, "time": time.time(), "user": user or _user(), "kind": kind} | fields


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def _sync_folder(path: str) -> None:
    """Make the new log's directory entry durable too (POSIX; a no-op elsewhere)."""
    if hasattr(os, "O_DIRECTORY"):
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
