"""Decode multi-round ExM barcode channels into a cell-identity label volume.

    res = decode(image)                              # (c, z, y, x); codebook learned from the data
    res = decode(image, codebook="codebook.csv")     # MERlin CSV, SpaceTx JSON or an array
    res = decode(image, fragments=watershed)         # barcode-guided agglomeration
    res.labels, res.table, res.codebook, res.confidence, res.report

The steps (after Shiu-era PRISM analysis and MERlin/starfish pixel decoding):
1. optional round registration: a reference stain re-imaged every round gives each
   round's shift (phase cross-correlation, sub-voxel), undone before anything else;
2. per-channel normalisation: a low percentile is background (0), a high one bright (1);
3. light smoothing, then per voxel the nearest code by cosine similarity ("metric") or the
   exact bit pattern above per-channel thresholds ("threshold"), inside a foreground mask;
   the codes' tag profiles (centroids) are refined from confidently decoded voxels;
4. identity: the undecoded border voxels between cells are filled from the cores by best
   profile match, and each cell ends where its voxels hold less than `edge_share` (0.4) of
   its own profile; each code's voxels split into connected pieces, small pieces dropped, so
   two cells sharing a code stay apart when apart. A thin neurite loses stretches where a
   brighter neighbour outshines it, though, so by default ("auto") the pieces of a code
   that no other cell is likely to carry (from its tags' expression rates and the number of
   codes) are one cell.
Every step is local or a chunk-wise reduction, so a dask volume larger than memory
decodes chunk by chunk to exactly the labels of an in-memory run.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import dask.array as da
import numpy as np
import pandas as pd

from .barcode_codebook import (
    Codebook,
    CodebookError,
    as_codebook,
    collision_report,
    expected_sharers,
    pack_bits,
)
from .barcode_decoding import DecodeSettings, decode_block
from .barcode_learning import (
    LEARN_FOREGROUND,
    drop_duplicate_profiles,
    global_levels,
    learn_codebook,
    learn_unexplained,
    learning_sample,
    refine_centroids,
    register_rounds,
)
from .barcode_volume import decode_voxels, write_results
from .formats.common import compute_with_progress

__all__ = ["Codebook", "CodebookError", "DecodeResult", "Decoder", "decode", "learn_codebook", "register_rounds"]

METHODS = ("metric", "threshold")
IDENTITIES = ("auto", "connected", "code")
# "auto" joins the pieces of codes fewer than this many other cells are expected to carry.
SHARED_CODE_RISK = 0.05


@dataclass
class DecodeResult:
    labels: object  # uint32 (z, y, x), 0 = background; numpy, or dask over `out`
    table: pd.DataFrame  # one row per label
    codebook: Codebook
    confidence: object  # float32 (z, y, x): cosine similarity to the assigned code
    report: dict = field(default_factory=dict)


def decode(
    image,
    channel_axis: int | None = 0,
    codebook=None,
    method: str = "metric",
    *,
    reference=None,
    reference_channels=None,
    round_of_channel=None,
    sigma: float = 0.5,
    foreground_threshold: float = 0.12,
    min_similarity: float = 0.9,
    thresholds="mean",
    min_size: int = 50,
    identity: str = "auto",
    fragment_similarity: float = 0.5,
    fill_iterations: int = 8,
    min_support: int = 200,
    fold_ratio: float = 5.0,
    fragments=None,
    chunks=None,
    out=None,
    progress: Callable[[int, int], None] | None = None,
) -> DecodeResult:
    """Decode barcode channels into labels; see the module docstring for the steps.

    image: (c, z, y, x) with `channel_axis`, or a list of (z, y, x) arrays, one per tag.
    codebook: None (learn from the data), a Codebook, a file, or a (codes x tags) array.
    method: "metric" (nearest code profile by cosine similarity) or "threshold" (exact bits).
    reference / reference_channels + round_of_channel: round registration, from a separate
        (rounds, z, y, x) reference stack or from channels of `image` (removed before decoding).
    sigma: smoothing in voxels before decoding.
    foreground_threshold: a voxel is decoded where its brightest tag exceeds this (normalised:
        0 = a tag's off level, 1 = bright); codes are first learned above max(this, 0.25).
    min_similarity: cosine similarity to a code for a voxel to count as decoded.
    thresholds: "mean", "otsu" or per-channel values: bits for method="threshold" and learning.
    min_size: pieces smaller than this (voxels) are dropped.
    identity: "connected": a code's voxels form one cell per connected piece, so two cells
        sharing a code stay apart; "code": one cell per code wherever its pieces lie (right
        when codes are unique, see `report["expected_cells_sharing_a_code"]`; bridges the
        gaps where a thin neurite crossing a thicker one was not decoded); "auto": "code"
        for the codes fewer than 0.05 other cells are expected to carry (from the tags'
        expression rates over the codebook and its size), "connected" for the rest.
    min_support, fold_ratio: learning: voxels a code needs; one-bit-off codes this much rarer fold in.
    fragments: an over-segmentation to agglomerate by barcode instead of decoding voxels.
    fragment_similarity: cosine similarity a fragment's mean tag vector needs to take a code
        (its brightest tag must also exceed foreground_threshold). Raise it for noisy data: an
        undecoded fragment is a split the merge queue repairs, a wrong code a merge it cannot.
    chunks: spatial block shape (default 64 x 128 x 128); the result does not depend on it.
    out: a folder to write the labels to as OME-Zarr (atomically), for volumes beyond memory.
    """
    decoder = Decoder(image, channel_axis, codebook, method, reference=reference,
                      reference_channels=reference_channels, round_of_channel=round_of_channel, sigma=sigma,
                      foreground_threshold=foreground_threshold, min_similarity=min_similarity,
                      thresholds=thresholds, min_size=min_size, identity=identity,
                      fragment_similarity=fragment_similarity, fill_iterations=fill_iterations,
                      min_support=min_support, fold_ratio=fold_ratio, progress=progress)
    return decoder.run(fragments=fragments, chunks=chunks, out=out, progress=progress)


class Decoder:
    """The global part of decoding done once (levels, shifts, codebook, code profiles), so
    that a widget can preview slices as thresholds move and then run the whole volume."""

    def __init__(self, image, channel_axis=0, codebook=None, method="metric", *, reference=None,
                 reference_channels=None, round_of_channel=None, sigma=0.5, foreground_threshold=0.12,
                 min_similarity=0.9, thresholds="mean", min_size=50, identity="auto",
                 fragment_similarity=0.5, fill_iterations=8, min_support=200, fold_ratio=5.0, progress=None):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {method!r}.")
        if identity not in IDENTITIES:
            raise ValueError(f"identity must be one of {IDENTITIES}, not {identity!r}.")
        self.is_dask = isinstance(image, da.Array) or any(isinstance(a, da.Array) for a in _as_list(image))
        self.stack, reference_stack, round_of_channel = _channels(image, channel_axis, reference,
                                                                  reference_channels, round_of_channel)
        book = as_codebook(codebook)
        if book is not None and book.n_bits != self.stack.shape[0]:
            raise CodebookError(
                f"The codebook has {book.n_bits} bits but the image has {self.stack.shape[0]} tag channels; "
                "they must match one to one (drop reference channels from the image or the codebook)."
            )
        self.method, self.min_size, self.identity = method, int(min_size), identity
        self.fragment_similarity = float(fragment_similarity)
        stages = _Stages(progress)
        low, high = global_levels(self.stack)
        shifts = None
        if reference_stack is not None:
            shifts = register_rounds(reference_stack)[np.asarray(round_of_channel)]
        settings = DecodeSettings(low=low, high=high, centroids=np.zeros((1, self.stack.shape[0]), np.float32),
                                  sigma=float(sigma), foreground_threshold=float(foreground_threshold),
                                  min_similarity=float(min_similarity), shifts=shifts,
                                  fill_iterations=int(fill_iterations))
        stages.done(1)
        sample = learning_sample(self.stack, settings)
        # Codes are read where cells are clearly bright (the cleanest bit patterns); dim cells
        # are then found among the voxels above the decoding threshold that those leave unexplained.
        bright = replace(settings, foreground_threshold=max(settings.foreground_threshold, LEARN_FOREGROUND))
        self.codebook, learned = learn_codebook(sample, bright, book, thresholds, min_support, fold_ratio)
        settings = replace(learned, foreground_threshold=settings.foreground_threshold)
        settings = refine_centroids(sample, settings, self.codebook)
        if book is None:  # a second look at what the learned codes leave undecoded
            self.codebook, settings = learn_unexplained(sample, settings, self.codebook, thresholds, min_support,
                                                        fold_ratio)
            settings = refine_centroids(sample, settings, self.codebook)
            self.codebook, settings = drop_duplicate_profiles(self.codebook, settings)
            settings = refine_centroids(sample, settings, self.codebook)
        self.histograms = channel_histograms(sample)
        del sample
        if method == "threshold":
            settings = replace(settings, code_numbers=pack_bits(self.codebook.codes))
        self.settings = settings
        stages.done(2)

    def with_options(self, **changes) -> Decoder:
        """The same decoder with other thresholds (foreground_threshold, min_similarity,
        fill_iterations, edge_share, min_size, identity): no relearning. The codes' tag profiles stay
        those measured at construction, so a changed min_similarity can differ slightly
        (well under 1% of voxels) from a decoder built with it."""
        other = copy.copy(self)
        if "min_size" in changes:
            other.min_size = int(changes.pop("min_size"))
        if "identity" in changes:
            other.identity = changes.pop("identity")
        if "fragment_similarity" in changes:
            other.fragment_similarity = float(changes.pop("fragment_similarity"))
        other.settings = replace(self.settings, **changes)
        return other

    def preview(self, z: int) -> dict[str, np.ndarray]:
        """Per-voxel decoding of slice z: code (1-based, 0 = none), similarity, foreground."""
        if not 0 <= z < self.stack.shape[1]:
            raise IndexError(f"slice {z} is outside 0..{self.stack.shape[1] - 1}.")
        halo = self.settings.smoothing_radius()
        start, stop = max(0, z - halo), min(self.stack.shape[1], z + halo + 1)
        slab = np.asarray(self.stack[:, start:stop])
        decoded = decode_block(slab, self.settings, self.method)[:, z - start]
        return {"code": decoded[0].astype(np.int32), "similarity": decoded[1], "foreground": decoded[2] > 0}

    def run(self, fragments=None, chunks=None, out=None, progress=None) -> DecodeResult:
        stages = _Stages(progress)
        stages.done(2)
        if fragments is not None:
            from .barcode_fragments import agglomerate

            settings = replace(self.settings, min_similarity=self.fragment_similarity)
            labels, table = agglomerate(self.stack, fragments, settings, self.codebook, stages)
            labels, confidence = (write_results(labels, None, out, None) if out is not None
                                  else (compute_with_progress(labels), None))
        else:
            in_memory = out is None or not self.is_dask
            labels, confidence, table = decode_voxels(self.stack, self.settings, self.method, self._joined_codes(),
                                                       self.min_size, chunks, out, in_memory, stages)
        book = self.codebook
        table = _describe(table, book, self.stack.shape[1:])
        coded = table.loc[table["code_index"] > 0, "code_index"]
        report = collision_report(book.n_bits, float(book.codes.mean()), len(book),
                                  found_shared=int((coded.value_counts() > 1).sum()))
        shifts = self.settings.shifts
        if "n_pieces" in table:
            report["codes_joined_across_pieces"] = int((table["n_pieces"] > 1).sum())
        report |= {"n_labels": len(table), "n_codes": len(book),
                   "shifts": None if shifts is None else shifts.tolist()}
        stages.done(6)
        return DecodeResult(labels, table, book, confidence, report)

    def _joined_codes(self) -> np.ndarray:
        """Code indexes (1-based) whose connected pieces are one cell, by `identity`."""
        if self.identity == "connected":
            return np.zeros(0, np.int64)
        if self.identity == "code":
            return np.arange(1, len(self.codebook) + 1)
        return np.flatnonzero(expected_sharers(self.codebook.codes, len(self.codebook)) < SHARED_CODE_RISK) + 1


def channel_histograms(x: np.ndarray, bins: int = 64, top: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel histograms of normalised intensity (for plotting thresholds): counts, edges.
    A million evenly strided voxels draw the same shape as all of them."""
    edges = np.linspace(0.0, top, bins + 1)
    flat = x.reshape(x.shape[0], -1)
    flat = flat[:, :: max(1, flat.shape[1] // 1_000_000)]
    counts = np.stack([np.histogram(channel, bins=edges)[0] for channel in flat])
    return counts, edges


def _as_list(image) -> list:
    return list(image) if isinstance(image, (list, tuple)) else [image]


def _channels(image, channel_axis, reference, reference_channels, round_of_channel):
    if isinstance(image, (list, tuple)):
        arrays = [a if isinstance(a, da.Array) else da.from_array(np.asarray(a), chunks=-1) for a in image]
        if len({a.shape for a in arrays}) != 1:
            raise ValueError(f"The channel arrays differ in shape: {[a.shape for a in arrays]}.")
        stack = da.stack(arrays)
    else:
        if channel_axis is None or np.ndim(image) != 4:
            raise ValueError(
                f"Barcode decoding needs one channel per tag: a (c, z, y, x) image with channel_axis, or a "
                f"list of (z, y, x) arrays; got shape {np.shape(image)} with channel_axis={channel_axis}."
            )
        stack = image if isinstance(image, da.Array) else da.from_array(np.asarray(image), chunks=-1)
        stack = da.moveaxis(stack, channel_axis, 0)
    if reference_channels is not None:
        indices = [int(i) for i in np.atleast_1d(reference_channels)]
        bad = [i for i in indices if not -stack.shape[0] <= i < stack.shape[0]]
        if bad:
            raise ValueError(f"reference_channels {bad} are out of range for {stack.shape[0]} channels.")
        indices = [i % stack.shape[0] for i in indices]
        reference = stack[indices]
        stack = stack[[i for i in range(stack.shape[0]) if i not in indices]]
    if reference is not None:
        reference = reference if isinstance(reference, da.Array) else da.from_array(np.asarray(reference), chunks=-1)
        if reference.ndim == 3:
            reference = reference[None]
        if round_of_channel is None or len(round_of_channel) != stack.shape[0]:
            raise ValueError("Round registration needs round_of_channel: the round (0-based) of each tag channel.")
        if max(round_of_channel) >= reference.shape[0] or min(round_of_channel) < 0:
            raise ValueError(f"round_of_channel names rounds beyond the {reference.shape[0]} reference images.")
    return stack, reference, round_of_channel


def _describe(table: pd.DataFrame, book: Codebook, shape: tuple[int, ...]) -> pd.DataFrame:
    """label, barcode (bits), code_index (1-based), name, n_voxels, mean_confidence, and
    z, y, x of a voxel inside the cell (its first in scan order: to jump to it)."""
    bits, names = [""] + book.bit_strings(), [""] + book.names  # code 0: a fragment left undecoded
    codes = table["value"].astype(int).to_numpy()
    out = pd.DataFrame({
        "label": table["label"].astype(np.int64).to_numpy(),
        "barcode": [bits[c] for c in codes],
        "code_index": codes,
        "name": [names[c] for c in codes],
        "n_voxels": table["size"].astype(np.int64).to_numpy(),
    })
    if "mean_confidence" in table:
        out["mean_confidence"] = table["mean_confidence"].to_numpy()
    if "n_pieces" in table:  # connected pieces of the code that are this cell (see `identity`)
        out["n_pieces"] = table["n_pieces"].astype(np.int64).to_numpy()
    inside = np.unravel_index(table["first_index"].astype(np.int64).to_numpy(), shape)
    for axis, coordinate in zip("zyx", inside):
        out[axis] = coordinate.astype(np.int64)
    return out


class _Stages:
    """Maps the six stages of decoding onto one progress(done, total) in thousandths."""

    BOUNDS = [0, 20, 80, 400, 550, 850, 950, 1000]

    def __init__(self, progress):
        self.progress = progress

    def done(self, stage: int) -> None:
        if self.progress:
            self.progress(self.BOUNDS[min(stage + 1, 7)], 1000)

    def within(self, stage: int):
        if self.progress is None:
            return None
        start, end = self.BOUNDS[stage], self.BOUNDS[stage + 1]
        return lambda done, total: self.progress(start + (end - start) * done // max(total, 1), 1000)
