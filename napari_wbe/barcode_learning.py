"""What decoding fixes before it looks at single voxels: intensity levels, round shifts,
the codebook (learned when not given) and each code's tag profile.

All of it is computed from a deterministic sample (a strided subsample, or a central
crop), so a chunked run and an in-memory run start from the very same numbers.
"""

from __future__ import annotations

import math
from dataclasses import replace

import dask
import dask.array as da
import numpy as np
from skimage.filters import threshold_otsu
from skimage.registration import phase_cross_correlation

from .barcode_codebook import Codebook, CodebookError, codes_from_counts, pack_bits
from .barcode_decoding import DecodeSettings, foreground, nearest_code, prepare, unit_vectors
from .barcode_kernels import bits_above, group_sums_kernel, interior

LEVEL_SAMPLES = 500_000  # voxels per channel for the background/bright percentiles
LEARN_VOXELS = 8_000_000  # voxels of the central crop that codes and profiles are learned on
REGISTER_SIDE = 128  # side of the central crop used to register rounds
# Learning reads codes from cell interiors; a looser match there keeps weakly decoded cells.
LEARN_SIMILARITY = 0.8
# Steps that need no neighbourhood (thresholds, profiles) read at most this many foreground
# voxels, evenly strided: averages over a million voxels no longer move.
PROFILE_VOXELS = 1_000_000
# The first learning pass reads codes from voxels whose brightest tag is above this (or the
# decoding threshold, if higher). A lower decoding threshold (the default 0.12) reaches dim
# cells, whose codes the second pass learns; reading all codes that low blurs weak tags' bits.
LEARN_FOREGROUND = 0.25
# Learned codes whose measured profiles are this similar (cosine) are one cell's code.
DUPLICATE_PROFILE = 0.97


def global_levels(stack: da.Array, low_percentile: float = 50.0, high_percentile: float = 99.5):
    """Background and bright level per channel from a strided subsample; checks the data.

    Each tag is off in most voxels (extracellular space and the cells not expressing it),
    so the median is the off level: subtracting it puts "off" at 0, where a fixed
    threshold can tell a weakly expressed tag from none.
    """
    n_voxels = math.prod(stack.shape[1:])
    step = max(1, math.ceil((n_voxels / LEVEL_SAMPLES) ** (1 / 3)))
    sample = np.asarray(stack[:, ::step, ::step, ::step].compute(), dtype=np.float64).reshape(stack.shape[0], -1)
    if np.dtype(stack.dtype).kind == "f":  # one pass over the data, before anything is written
        finite = da.isfinite(stack).all(axis=tuple(range(1, stack.ndim))).compute()
    else:
        finite = np.ones(stack.shape[0], bool)
    bad = np.flatnonzero(~finite)
    if len(bad):
        raise ValueError(
            f"Channels {bad.tolist()} contain NaN or infinite values; replace them (e.g. np.nan_to_num) "
            "or crop them away before decoding."
        )
    low = np.percentile(sample, low_percentile, axis=1)
    high = np.percentile(sample, high_percentile, axis=1)
    flat = np.flatnonzero(sample.max(axis=1) <= sample.min(axis=1))
    if len(flat):
        raise ValueError(
            f"Channels {flat.tolist()} are empty (all zero or constant): a round that was not imaged? "
            "Remove those channels (and their codebook bits)."
        )
    dim = np.flatnonzero(high <= low)
    high[dim] = sample[dim].max(axis=1)  # sparse tags: the percentile still sits on background
    return low.astype(np.float32), high.astype(np.float32)


def learning_boxes(spatial: tuple[int, ...]) -> list[tuple[slice, ...]]:
    """Where learning looks: a volume up to LEARN_VOXELS whole; a larger one in eight
    boxes, one in each octant, so that cells all over the volume are seen."""
    if math.prod(spatial) <= LEARN_VOXELS:
        return [tuple(slice(0, s) for s in spatial)]
    side = [max(1, int(s * (LEARN_VOXELS / 8 / math.prod(spatial)) ** (1 / 3))) for s in spatial]
    side = [min(n, s // 2) for n, s in zip(side, spatial)]
    boxes = []
    for octant in np.ndindex(2, 2, 2):
        centre = [(2 * o + 1) * s // 4 for o, s in zip(octant, spatial)]
        boxes.append(tuple(slice(c - n // 2, c - n // 2 + n) for c, n in zip(centre, side)))
    return boxes


def read_boxes(stack: da.Array) -> list[np.ndarray]:
    """The raw channels of the learning boxes, read once (together, so reads overlap)."""
    return list(dask.compute(*[stack[(slice(None),) + box] for box in learning_boxes(stack.shape[1:])]))


def central_crop(array: da.Array, max_voxels: int, spatial_from: int = 1) -> np.ndarray:
    """The central box of at most `max_voxels` spatial voxels, read into memory."""
    spatial = array.shape[spatial_from:]
    factor = min(1.0, (max_voxels / math.prod(spatial)) ** (1 / len(spatial)))
    sizes = [max(1, int(s * factor)) for s in spatial]
    index = (slice(None),) * spatial_from + tuple(slice((s - n) // 2, (s - n) // 2 + n) for s, n in zip(spatial, sizes))
    return np.asarray(array[index])


def register_rounds(reference, upsample_factor: int = 10) -> np.ndarray:
    """(rounds, 3) shifts in voxels that align each round's reference image onto round 0's."""
    reference = reference if isinstance(reference, da.Array) else da.from_array(np.asarray(reference), chunks=-1)
    crop = central_crop(reference, REGISTER_SIDE**3).astype(np.float32)
    shifts = np.zeros((crop.shape[0], 3))
    for r in range(1, crop.shape[0]):
        shifts[r] = phase_cross_correlation(crop[0], crop[r], upsample_factor=upsample_factor)[0]
    return shifts


def channel_thresholds(x: np.ndarray, fg: np.ndarray, how) -> np.ndarray:
    """Per-channel on/off thresholds on normalised intensity, over foreground voxels."""
    if not isinstance(how, str):
        values = np.asarray(how, dtype=np.float32)
        if values.shape != (x.shape[0],):
            raise ValueError(f"thresholds needs one value per channel ({x.shape[0]}), got shape {values.shape}.")
        return values
    if how not in ("otsu", "mean"):
        raise ValueError(f"thresholds must be 'otsu', 'mean' or one value per channel, not {how!r}.")
    inside = foreground_columns(x, fg)
    if how == "mean":  # as in the PRISM analysis: each channel binarised at its mean
        return inside.mean(axis=1).astype(np.float32)
    return np.array([threshold_otsu(channel) for channel in inside], dtype=np.float32)


def learning_sample(stack, settings: DecodeSettings) -> np.ndarray:
    """The prepared voxels that codes, thresholds and profiles are learned on: the
    learning boxes, each prepared on its own (its edges as a volume's), stacked along z."""
    boxes = read_boxes(stack)
    if len(boxes) == 1:
        return prepare(boxes[0], settings)
    return np.concatenate([prepare(box, settings) for box in boxes], axis=1)


def _need_candidates(candidates: np.ndarray, candidate_support: int) -> None:
    if not len(candidates):
        raise ValueError(
            "No barcode could be learned: no bit pattern is shared by the six neighbours of at least "
            f"{candidate_support} voxels, so the channels look like noise at this resolution. Check that the "
            "channels are registered (a reference channel) and in focus, give a codebook, or decode the fragments "
            "of an over-segmentation (fragment mode), which averages the noise over each fragment.")


def learn_codebook(x: np.ndarray, settings: DecodeSettings, book: Codebook | None, thresholds, min_support: int,
                   fold_ratio: float, code_threshold: float = 0.08, iterations: int = 3,
                   candidate_support: int = 30, within=None) -> tuple[Codebook, DecodeSettings]:
    """The given codebook, or codes learned from the central crop; plus channel thresholds.

    Single voxels binarise badly (dropout, shot noise, weak tags), so codes are learned
    from regions: candidate codes are the bit patterns that a voxel shares with all six
    neighbours (inside a cell they agree; borders mixing two cells' tags do not); then,
    a few times over, voxels go to the most similar candidate and each candidate's code is
    re-read from the mean intensity of its interior voxels, where noise has averaged out.
    Candidates are matched by their measured mean direction, not their bare bits: a cell
    with one weak tag is closer to a brighter cell carrying that tag and one more than to
    its own binary code, and would be absorbed by it.
    The returned settings carry one unit centroid per code (the measured ones when learned).
    `within`: learn from these voxels only, as if all others were dark.
    """
    fg = foreground(x, settings.foreground_threshold)
    if within is not None:
        fg &= within
    if not fg.any():
        raise ValueError(
            f"No voxel is above foreground_threshold={settings.foreground_threshold} in the learning crop; "
            "lower it or check the channels."
        )
    levels = channel_thresholds(x, fg, thresholds)
    settings = replace(settings, thresholds=levels)
    n_bits = x.shape[0]
    numbers = bits_above(x, levels, np.ones(fg.shape, bool) if within is None else within)
    where = np.flatnonzero(fg)
    x_fg = np.take(x.reshape(n_bits, -1), where, axis=1)  # (C, foreground voxels): read once
    if book is not None:
        patterns = pack_bits(book.codes)
        order = np.argsort(patterns)
        means = np.empty((len(book), n_bits))
        means[order] = _pattern_means(numbers, fg, patterns[order], x_fg, where)
        unseen = ~means.any(axis=1)  # no interior voxel reads the code: start from its bits
        means[unseen] = book.unit_vectors()[unseen]
        return book, replace(settings, centroids=unit_rows(means))
    candidates, support = np.unique(numbers[interior(numbers, fg)], return_counts=True)
    keep = (candidates != 0) & (support >= candidate_support)
    candidates, support = candidates[keep], support[keep]
    _need_candidates(candidates, candidate_support)
    centroids = _pattern_means(numbers, fg, candidates, x_fg, where)
    for _ in range(iterations):
        assigned = np.full(fg.shape, -1, np.int64)
        index, similarity = nearest_code(x_fg, unit_rows(centroids), cosine=True)
        assigned.ravel()[where] = np.where(similarity >= LEARN_SIMILARITY, index, -1)
        votes = np.where(interior(assigned, assigned >= 0).ravel()[where], assigned.ravel()[where], -1)
        support = np.bincount(votes[votes >= 0], minlength=len(candidates))
        sums = group_sums(votes, x_fg, len(candidates))
        seen = support > 0
        reread = pack_bits(sums[seen] / support[seen, None] > code_threshold)
        candidates, inverse = np.unique(reread, return_inverse=True)
        support = np.bincount(inverse, weights=support[seen]).astype(np.int64)
        centroids = np.zeros((len(candidates), n_bits))
        np.add.at(centroids, inverse, sums[seen])
        keep = candidates != 0
        candidates, support, centroids = candidates[keep], support[keep], centroids[keep]
        _need_candidates(candidates, candidate_support)
    book = codes_from_counts(candidates, support, n_bits, min_support, fold_ratio)
    measured = unit_rows(centroids[np.searchsorted(candidates, pack_bits(book.codes))])
    return book, replace(settings, centroids=measured)


def _pattern_means(numbers, fg, sorted_patterns, x_fg, where) -> np.ndarray:
    """(patterns, C) intensity sums of the interior voxels reading exactly each pattern
    (zero rows for patterns no interior voxel reads): where a candidate starts."""
    read = numbers.ravel()[where]
    index = np.minimum(np.searchsorted(sorted_patterns, read), len(sorted_patterns) - 1)
    exact = (sorted_patterns[index] == read) & interior(numbers, fg).ravel()[where]
    return group_sums(np.where(exact, index, -1), x_fg, len(sorted_patterns))


def unit_rows(rows: np.ndarray) -> np.ndarray:
    """float32 rows scaled to length 1."""
    return (rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def learn_unexplained(x: np.ndarray, settings: DecodeSettings, book: Codebook, thresholds, min_support: int,
                      fold_ratio: float) -> tuple[Codebook, DecodeSettings]:
    """`book` plus the codes of cells it leaves unexplained (and their measured centroids).

    Small, thin cells have few interior voxels, and beside bright neighbours their bit
    patterns are muddled, so the first pass misses some of them; but their voxels stay
    undecoded (no code is similar enough). Learning again on those voxels alone finds
    them: on the acceptance phantom, two of the four codes missed, and no false code.
    """
    fg = foreground(x, settings.foreground_threshold)
    where = np.flatnonzero(fg)
    _, similarity = nearest_code(np.take(x.reshape(x.shape[0], -1), where, axis=1), settings.centroids,
                                 cosine=True)
    unexplained = np.zeros_like(fg)
    unexplained.ravel()[where] = similarity < settings.min_similarity
    if unexplained.sum() < min_support:
        return book, settings
    try:
        extra, measured = learn_codebook(x, settings, None, thresholds, min_support, fold_ratio, within=unexplained)
    except (CodebookError, ValueError):  # nothing frequent enough among them: nothing to add
        return book, settings
    new = ~np.isin(pack_bits(extra.codes), pack_bits(book.codes))
    if not new.any():
        return book, settings
    support = None if book.support is None or extra.support is None else \
        np.concatenate([book.support, extra.support[new]])
    return (Codebook(np.vstack([book.codes, extra.codes[new]]), support=support),
            replace(settings, centroids=np.vstack([settings.centroids, measured.centroids[new]])))


def drop_duplicate_profiles(book: Codebook, settings: DecodeSettings,
                            min_cosine: float = DUPLICATE_PROFILE) -> tuple[Codebook, DecodeSettings]:
    """Keep one of the learned codes that measure the same tag profile.

    A tag expressed near the on/off threshold in part of a cell reads as a second code one
    bit off; its measured profile is then the cell's own (the dim tag still clearly on),
    and the cell's voxels split between the two codes at random. Distinct cells' profiles
    stay far apart (on the acceptance phantom the closest two are 0.88), so codes closer
    than `min_cosine` are one: the better supported one stays.
    """
    similarity = settings.centroids @ settings.centroids.T
    support = book.support if book.support is not None else np.zeros(len(book))
    kept: list[int] = []
    for code in np.argsort(-np.asarray(support), kind="stable"):
        if all(similarity[code, other] < min_cosine for other in kept):
            kept.append(int(code))
    if len(kept) == len(book):
        return book, settings
    kept.sort()
    smaller = Codebook(book.codes[kept], names=[book.names[i] for i in kept], ids=book.ids[kept],
                       support=None if book.support is None else book.support[kept])
    return smaller, replace(settings, centroids=settings.centroids[kept], profiles=settings.profiles[kept])


def refine_centroids(x: np.ndarray, settings: DecodeSettings, book: Codebook, iterations: int = 2,
                     min_voxels: int = 20) -> DecodeSettings:
    """Each code's tag profile: the mean unit vector of the voxels confidently decoded to it
    (for matching), and their mean intensities (for splitting mixed border voxels).

    Tags are expressed at different levels, so a cell's intensity vector is not its binary
    code; matching against measured profiles decodes far more voxels than the bare code.
    Starts from `settings.centroids` (one per code, as `learn_codebook` leaves them).
    """
    centroids = settings.centroids
    flat_x = foreground_columns(x, foreground(x, settings.foreground_threshold))
    flat, _ = unit_vectors(flat_x)
    profiles = book.codes.astype(np.float32)
    for _ in range(iterations):
        index, similarity = nearest_code(flat, centroids)
        confident = similarity >= settings.min_similarity
        counts = np.bincount(index[confident], minlength=len(centroids))
        votes = np.where(confident, index, -1)
        sums = group_sums(votes, flat, len(centroids))
        enough = counts >= min_voxels
        sums[enough] /= np.linalg.norm(sums[enough], axis=1, keepdims=True)
        centroids = np.where(enough[:, None], sums, centroids).astype(np.float32)
        means = group_sums(votes, flat_x, len(centroids)) / np.maximum(counts, 1)[:, None]
        profiles = np.where(enough[:, None], means, profiles).astype(np.float32)
    return replace(settings, centroids=centroids, profiles=profiles)


def foreground_columns(x: np.ndarray, fg: np.ndarray, limit: int = PROFILE_VOXELS) -> np.ndarray:
    """(C, n) intensities of at most `limit` foreground voxels, evenly strided."""
    where = np.flatnonzero(fg.ravel())
    where = where[:: max(1, -(-len(where) // limit))]
    return np.take(x.reshape(x.shape[0], -1), where, axis=1)


def group_sums(groups: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """(n_groups, C) sums of the (C, N) `values` columns by group, skipping groups < 0
    (float64: exact enough for means over millions of voxels)."""
    return group_sums_kernel(np.asarray(groups, np.int64), np.ascontiguousarray(values), n_groups)
