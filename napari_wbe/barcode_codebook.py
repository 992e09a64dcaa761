"""Barcode codebooks: read, validate, learn from the data, and collision statistics.

A codebook lists one binary code per cell identity (a row of bits, one bit per tag
channel). Files people have: MERlin-style CSV (`name, id, bit1..bitN`) and starfish /
SpaceTx JSON (codewords as (round, channel) pairs, flattened to bit = round * n_ch + ch).
Codes in PRISM-style barcoding are random, so they may also be learned from the image.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


class CodebookError(ValueError):
    """A codebook cannot be used as given; the message says how to fix it."""


@dataclass
class Codebook:
    """codes: bool (n_codes, n_bits); names and ids: one per code; support: voxels seen."""

    codes: np.ndarray
    names: list[str] = field(default_factory=list)
    ids: np.ndarray | None = None
    support: np.ndarray | None = None

    def __post_init__(self):
        self.codes = check_codes(self.codes)
        n = len(self.codes)
        self.names = list(self.names) or [f"code_{i + 1}" for i in range(n)]
        self.ids = np.arange(1, n + 1) if self.ids is None else np.asarray(self.ids, dtype=np.int64)
        if len(self.names) != n or len(self.ids) != n:
            raise CodebookError(f"The codebook has {n} codes but {len(self.names)} names and {len(self.ids)} ids.")

    @property
    def n_bits(self) -> int:
        return self.codes.shape[1]

    def __len__(self) -> int:
        return len(self.codes)

    def bit_strings(self) -> list[str]:
        return ["".join("1" if b else "0" for b in row) for row in self.codes]

    def unit_vectors(self) -> np.ndarray:
        codes = self.codes.astype(np.float32)
        return codes / np.linalg.norm(codes, axis=1, keepdims=True)

    def to_dataframe(self) -> pd.DataFrame:
        bits = pd.DataFrame(self.codes.astype(int), columns=[f"bit{i + 1}" for i in range(self.n_bits)])
        table = pd.concat([pd.DataFrame({"name": self.names, "id": self.ids}), bits], axis=1)
        if self.support is not None:
            table["support"] = self.support
        return table

    def __repr__(self) -> str:
        return f"Codebook({len(self)} codes x {self.n_bits} bits)"


def check_codes(codes) -> np.ndarray:
    """A bool (n_codes, n_bits) array, or a CodebookError naming the bad rows."""
    array = np.asarray(codes)
    if array.ndim != 2 or array.shape[0] == 0:
        raise CodebookError(f"A codebook is a 2-D array (codes x bits); got shape {array.shape}.")
    if not np.isin(array, (0, 1)).all():
        raise CodebookError("Codebook entries must be 0 or 1 (one bit per tag channel); found other values.")
    array = array.astype(bool)
    empty = np.flatnonzero(~array.any(axis=1))
    if len(empty):
        raise CodebookError(f"Codes {list(empty[:5])} have no bit set; a cell expressing no tag cannot be decoded.")
    _, first, counts = np.unique(array, axis=0, return_index=True, return_counts=True)
    if (counts > 1).any():
        dup = sorted(first[counts > 1])[:5]
        raise CodebookError(
            f"Codes at rows {dup} appear more than once; decoding cannot tell identical codes apart. "
            "Keep one row per code (cells sharing a code are still split into connected pieces)."
        )
    return array


def read_codebook(path) -> Codebook:
    """A MERlin CSV (name, id, bit1..bitN) or a starfish/SpaceTx JSON codebook."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CodebookError(f"No codebook file at {path!r}.")
    if path.lower().endswith(".json"):
        return _read_spacetx(path)
    table = pd.read_csv(path)
    bit_columns = [c for c in table.columns if str(c).lower().startswith("bit")]
    if not bit_columns:
        raise CodebookError(f"{path} has no bit1..bitN columns (MERlin codebook: name, id, bit1, bit2, ...).")
    names = table["name"].astype(str).tolist() if "name" in table else []
    ids = table["id"].to_numpy() if "id" in table and pd.api.types.is_integer_dtype(table["id"]) else None
    return Codebook(table[bit_columns].to_numpy(), names, ids)


def _read_spacetx(path: str) -> Codebook:
    with open(path) as f:
        document = json.load(f)
    entries = document.get("mappings", [{}])[0].get("codebook") if isinstance(document, dict) else document
    if not entries:
        raise CodebookError(f"{path} holds no SpaceTx codebook entries (mappings[0].codebook).")
    n_channels = 1 + max(cw["c"] for e in entries for cw in e["codeword"])
    n_rounds = 1 + max(cw["r"] for e in entries for cw in e["codeword"])
    codes = np.zeros((len(entries), n_rounds * n_channels), dtype=bool)
    for row, entry in enumerate(entries):
        for cw in entry["codeword"]:
            codes[row, cw["r"] * n_channels + cw["c"]] = cw.get("v", 1) > 0
    return Codebook(codes, [str(e.get("target", f"code_{i + 1}")) for i, e in enumerate(entries)])


def write_codebook(codebook: Codebook, path) -> None:
    """MERlin-style CSV: name, id, bit1..bitN (plus support when learned)."""
    codebook.to_dataframe().to_csv(os.fspath(path), index=False)


def as_codebook(codebook) -> Codebook | None:
    """None, a Codebook, a file path, or a (codes x bits) array -> Codebook or None."""
    if codebook is None or isinstance(codebook, Codebook):
        return codebook
    if isinstance(codebook, (str, os.PathLike)):
        return read_codebook(codebook)
    if isinstance(codebook, pd.DataFrame):
        return Codebook(codebook.filter(regex=r"^bit").to_numpy(), codebook.get("name", pd.Series(dtype=str)).tolist())
    return Codebook(np.asarray(codebook))


# --- learning -------------------------------------------------------------------------


def pack_bits(bits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Bool bits along `axis` -> int64 code numbers (bit i has weight 2**i); n_bits <= 62."""
    bits = np.moveaxis(np.asarray(bits), axis, 0)
    numbers = np.zeros(bits.shape[1:], np.int64)
    for i, bit in enumerate(bits):
        numbers |= bit.astype(np.int64) << i
    return numbers


def unpack_bits(numbers: np.ndarray, n_bits: int) -> np.ndarray:
    return ((np.asarray(numbers, dtype=np.int64)[:, None] >> np.arange(n_bits)) & 1).astype(bool)


def codes_from_counts(numbers: np.ndarray, counts: np.ndarray, n_bits: int, min_support: int,
                      fold_ratio: float) -> Codebook:
    """Frequent codes, with rare codes one bit away from a much more frequent one folded in.

    A voxel (or fragment) whose one tag dropped out reads as a code one bit away from its
    cell's; folding those into the frequent code corrects the error and keeps them from
    passing as cells of their own.
    """
    order = np.argsort(-counts, kind="stable")
    numbers, counts = numbers[order].astype(np.int64), counts[order].astype(np.int64)
    keep = (numbers != 0) & (counts > 0)
    numbers, counts = numbers[keep], counts[keep]
    total = dict(zip(numbers.tolist(), counts.tolist()))
    for number, count in zip(numbers[::-1].tolist(), counts[::-1].tolist()):  # rarest first
        neighbours = [number ^ (1 << b) for b in range(n_bits)]
        best = max(neighbours, key=lambda n: total.get(n, 0))
        if total.get(best, 0) >= fold_ratio * count and number in total:
            total[best] += total.pop(number)
    kept = sorted(((c, n) for n, c in total.items() if c >= min_support), reverse=True)
    if not kept:
        raise CodebookError(
            f"No code reached min_support={min_support} voxels; lower min_support, check the foreground "
            "threshold, or give the codebook."
        )
    support = np.array([c for c, _ in kept])
    codes = unpack_bits(np.array([n for _, n in kept]), n_bits)
    return Codebook(codes, support=support)


# --- collisions -----------------------------------------------------------------------


def expected_sharers(codes: np.ndarray, n_cells: int) -> np.ndarray:
    """Per code, how many of the other `n_cells - 1` cells are expected to draw it too.

    Tags are expressed at their own rates (each tag's share of the codes); a code is drawn
    with the product over tags of the rate (bit on) or its complement (bit off): a code of
    many rarely expressed tags is almost surely one cell's, a one-tag code much less so.
    """
    codes = np.asarray(codes, bool)
    floor = 0.5 / max(len(codes), 1)  # a tag seen in no code (or in all) is still possible
    rate = np.clip(codes.mean(axis=0), floor, 1 - floor)
    draw = np.where(codes, rate, 1 - rate).prod(axis=1)
    return max(n_cells - 1, 0) * draw


def collision_report(n_bits: int, expression_p: float, n_cells: int, found_shared: int | None = None) -> dict:
    """How many of `n_cells` random codes are expected to be shared, against what was found.

    Each bit is on with probability p, so two cells draw the same code with probability
    q = (p^2 + (1 - p)^2)^n; a cell shares its code with someone with 1 - (1 - q)^(M - 1).
    """
    q = (expression_p**2 + (1 - expression_p) ** 2) ** n_bits
    expected_pairs = math.comb(n_cells, 2) * q
    expected_cells = n_cells * (1 - (1 - q) ** max(n_cells - 1, 0))
    report = {"n_bits": n_bits, "expression_p": expression_p, "n_cells": n_cells,
              "pair_collision_probability": q, "expected_colliding_pairs": expected_pairs,
              "expected_cells_sharing_a_code": expected_cells}
    if found_shared is not None:
        report["found_codes_on_several_separate_cells"] = found_shared
    return report
