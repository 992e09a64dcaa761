"""What barcode decoding sees in the mini brain (:mod:`napari_wbe.phantom`): the ExM
tag channels, imaged in rounds with a reference stain, and an over-segmentation.

Tag channels: each expressed tag fills its neuron; voxels drop out (punctate staining),
optics blur, then background, shot noise and read noise (one camera model for every
channel). Per-voxel thresholding is noisy; denoising plus nearest codeword works.

Imaging rounds (PRISM-style): a few tags are stained and imaged per round, and one
reference stain (pan-neuronal: every neuron at a moderate level, membranes a little
dimmer) is imaged again in every round. The sample is re-mounted between rounds, so
each round is shifted (stage drift) relative to round 0; tags and reference of a round
share its shift, which is what lets a decoder register rounds on the reference.
A shift s moves the content: what sits at voxel p in round 0 appears at p + s.

Fragments: an automatic watershed over-segments; decoders pool barcode evidence over
its fragments. Here every neuron is cut into connected pieces of about
``fragment_size`` voxels, each inside exactly one neuron (no false merges).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.ndimage import convolve1d, gaussian_filter
from scipy.ndimage import shift as shift_image
from skimage.measure import label as connected_components

from napari_wbe import phantom_contacts as contacts

# Camera model, in counts: tag brightness, background, photon gain, read noise.
_SIGNAL = 1000.0
_BACKGROUND = 100.0
_COUNTS_PER_PHOTON = 20.0
_READ_NOISE = 10.0
# The reference stain: level relative to a typical tag, spread between cells (lognormal
# sigma), and how much darker membranes are (a cytosolic stain thins out at the edge).
_REFERENCE_LEVEL = 0.5
_REFERENCE_SPREAD = 0.25
_MEMBRANE_DIMMING = 0.35
# Stage drift is mostly in the section plane; z (focus) moves about a third as much.
_Z_SHIFT_FRACTION = 1.0 / 3.0


# --- barcodes in imaging rounds -------------------------------------------------------


def draw_barcodes(rng, n_neurons, n_channels, expression_p):
    """Codebook (bool, neurons x tags: each tag expressed with probability expression_p,
    at least one per neuron) and each expressed tag's brightness (0 where not)."""
    codebook = rng.random((n_neurons, n_channels)) < expression_p
    silent = np.flatnonzero(~codebook.any(axis=1))
    codebook[silent, rng.integers(0, n_channels, len(silent))] = True
    # Expression levels vary a lot between cells and tags; lognormal keeps them positive.
    brightness = rng.lognormal(0.0, 0.45, (n_neurons, n_channels)) * codebook
    return codebook, brightness


def image_in_rounds(streams, labels, brightness, spacing, *, tags_per_round, round_shift,
                    dropout, noise, blur, dtype, workers=None, report=lambda done, message: None):
    """The ExM fields of a MiniBrain: barcode_image, reference_image, round_of_channel,
    round_shifts. `streams`: seed sequences for the tags, the shifts and the reference;
    `report(fraction done, message)` hears of progress."""
    barcode_stream, shift_stream, reference_stream = streams
    n_neurons, n_channels = brightness.shape
    round_of_channel = round_of_channels(n_channels, tags_per_round)
    n_rounds = int(round_of_channel[-1]) + 1
    round_shifts = draw_round_shifts(np.random.default_rng(shift_stream), n_rounds, round_shift)
    imaging = {"dropout": dropout, "noise": noise, "blur": blur, "dtype": dtype,
               "round_shifts": round_shifts}
    tags = render_barcodes(barcode_stream, labels, brightness, spacing, workers=workers,
                           round_of_channel=round_of_channel,
                           report=lambda done, message: report(0.9 * done, message), **imaging)
    reference = render_reference(reference_stream, labels, n_neurons, spacing, workers=workers,
                                 **imaging)
    return {"barcode_image": tags, "reference_image": reference,
            "round_of_channel": round_of_channel, "round_shifts": round_shifts}


def round_of_channels(n_channels: int, tags_per_round: int) -> np.ndarray:
    """Round index (0, 1, ...) of every tag channel, tags imaged in channel order."""
    return np.arange(n_channels, dtype=np.int64) // int(tags_per_round)


def draw_round_shifts(rng, n_rounds: int, max_shift: float) -> np.ndarray:
    """(n_rounds, 3) float64 shifts (z, y, x voxels), uniform within +-max_shift in y, x
    and a third of that in z; round 0 is the registration target, so it stays at 0."""
    limit = max_shift * np.array([_Z_SHIFT_FRACTION, 1.0, 1.0])
    shifts = rng.uniform(-1.0, 1.0, (n_rounds, 3)) * limit
    shifts[0] = 0.0
    return shifts


# --- rendering ------------------------------------------------------------------------


def _threads(workers):
    # scipy.ndimage and numpy release the GIL, so channels render in parallel in threads.
    return ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1))


def _optics_sigma(blur, spacing):
    # blur is in in-plane voxels; in z it is scaled so the blur is isotropic in nm.
    return tuple(blur * float(spacing[1:].min()) / np.asarray(spacing, float))


def _stain(level, labels, dropout, rng):
    """float32 clean stain: each neuron at its level, with voxels missing at random."""
    signal = level[labels]
    if dropout > 0:
        keep_above = np.uint16(min(round(dropout * 65536), 65535))
        signal *= rng.integers(0, 65536, labels.shape, dtype=np.uint16) >= keep_above
    return signal


def _blur(signal, sigma):
    if max(sigma) > 0:
        gaussian_filter(signal, sigma, output=signal, truncate=3.0)
    return signal


def _blur_and_drift(signal, sigma, shift):
    """Optics blur, then the stage drift `shift` (voxels; may modify `signal`).

    A sub-voxel shift folds into the blur as an off-centre gaussian kernel: exact and no
    slower than the blur alone (linear interpolation would also smooth, and bias
    registration toward whole voxels). Whole voxels move by indexing, edges repeating.
    """
    if not np.any(shift):
        return _blur(signal, sigma)
    if min(sigma) <= 0:  # no optics to fold the shift into
        return shift_image(_blur(signal, sigma), shift, order=1, mode="nearest", prefilter=False)
    for axis, (width, move) in enumerate(zip(sigma, shift)):
        whole = int(np.floor(move))
        offset = np.arange(-int(3.0 * width + 0.5) - 1, int(3.0 * width + 0.5) + 2)
        exponent = -((offset - (move - whole)) ** 2) / (2.0 * width**2)
        kernel = np.exp(exponent - exponent.max())  # never all zero, however narrow
        signal = convolve1d(signal, kernel / kernel.sum(), axis=axis, mode="nearest")
        if whole:
            n = signal.shape[axis]
            signal = signal.take(np.clip(np.arange(n) - whole, 0, n - 1), axis=axis)
    return signal


def _camera(signal, background, noise, rng, dtype):
    """What a camera records of a clean signal (modified in place)."""
    signal += np.float32(background)
    if noise > 0:
        # Photon shot noise grows with the signal; read noise is a constant floor.
        std = signal * np.float32(_COUNTS_PER_PHOTON)
        std += np.float32(_READ_NOISE**2)
        np.sqrt(std, out=std)
        std *= np.float32(noise) * rng.standard_normal(signal.shape, dtype=np.float32)
        signal += std
        del std
    if dtype == np.uint16:
        np.clip(signal, 0, 65535, out=signal)
        np.rint(signal, out=signal)
    return signal


def render_barcodes(seed_sequence, labels, brightness, spacing, *, dropout, noise, blur,
                    dtype, round_of_channel, round_shifts, workers=None,
                    report=lambda done, message: None):
    """(c, z, y, x) tag channels; channel c is shifted by its round's shift. Each channel
    has its own random stream, so the result does not depend on which thread renders it."""
    n_channels = brightness.shape[1]
    out = np.empty((n_channels,) + labels.shape, dtype=np.dtype(dtype))
    *streams, shared = seed_sequence.spawn(n_channels + 1)
    background = _BACKGROUND * np.random.default_rng(shared).uniform(0.7, 1.3, n_channels)
    sigma = _optics_sigma(blur, spacing)

    def render(channel):
        rng = np.random.default_rng(streams[channel])
        level = np.r_[0.0, brightness[:, channel] * _SIGNAL].astype(np.float32)
        signal = _stain(level, labels, dropout, rng)
        signal = _blur_and_drift(signal, sigma, round_shifts[round_of_channel[channel]])
        out[channel] = _camera(signal, background[channel], noise, rng, out.dtype)

    with _threads(workers) as pool:
        for done, _ in enumerate(pool.map(render, range(n_channels)), start=1):
            report(done / n_channels, f"barcode channel {done}/{n_channels}")
    return out


def render_reference(seed_sequence, labels, n_neurons, spacing, *, dropout, noise, blur,
                     dtype, round_shifts, workers=None):
    """(rounds, z, y, x) reference stain, shifted like each round.

    The stain lives in the tissue, so its punctate pattern is drawn once and re-imaged
    every round; staining efficiency, background and camera noise change per round.
    """
    n_rounds = len(round_shifts)
    *streams, shared = seed_sequence.spawn(n_rounds + 1)
    rng = np.random.default_rng(shared)
    cells = rng.lognormal(0.0, _REFERENCE_SPREAD, n_neurons)
    level = np.r_[0.0, _REFERENCE_LEVEL * _SIGNAL * cells].astype(np.float32)
    clean = _stain(level, labels, dropout, rng)
    clean *= 1.0 - np.float32(_MEMBRANE_DIMMING) * contacts.boundary_strength(labels, spacing)
    sigma = _optics_sigma(blur, spacing)
    efficiency = rng.uniform(0.85, 1.15, n_rounds).astype(np.float32)
    background = _BACKGROUND * rng.uniform(0.8, 1.2, n_rounds)
    out = np.empty((n_rounds,) + labels.shape, dtype=np.dtype(dtype))

    def render(r):
        signal = _blur_and_drift(clean.copy(), sigma, round_shifts[r]) * efficiency[r]
        out[r] = _camera(signal, background[r], noise, np.random.default_rng(streams[r]),
                         out.dtype)

    with _threads(workers) as pool:
        list(pool.map(render, range(n_rounds)))
    return out


# --- over-segmentation ----------------------------------------------------------------


def oversegment(labels, fragment_size, rng, relax_steps=1):
    """Cut every neuron into connected fragments of about `fragment_size` voxels.

    Seeds are scattered at random over each connected piece of each neuron (about one
    per `fragment_size` voxels, at least one per piece); every voxel then goes to the
    nearest seed of its own piece, distance counted in face steps inside the piece
    (a geodesic Voronoi split, which is what a seeded watershed on a flat landscape
    does). `relax_steps` times, seeds move to the voxel nearest their fragment's centre
    and the split is redone, evening out fragment sizes (Lloyd's algorithm).

    Returns (fragments, fragment_to_neuron): uint32 like `labels`, 0 = background,
    ids 1..n numbered in raster order of their seeds (no hint of which neuron); and
    uint32 (n + 1,) with fragment_to_neuron[f] the neuron of fragment f
    (fragment_to_neuron[0] = 0, so ``fragment_to_neuron[fragments] == labels``).
    """
    if isinstance(fragment_size, (bool, np.bool_)) or not (
            isinstance(fragment_size, (int, np.integer)) and fragment_size >= 1):
        raise ValueError("fragment_size must be a whole number >= 1 (voxels per fragment); "
                         f"got fragment_size={fragment_size!r}.")
    # On a grid padded with background the flood needs no bounds checks: a step off the
    # volume lands on a 0, which belongs to no neuron.
    padded = np.pad(labels, 1)
    flat = padded.reshape(-1)
    inside = np.flatnonzero(flat)
    seeds = _scatter_seeds(padded, inside, fragment_size, rng)
    owner = _grow(flat, padded.shape, seeds)
    for _ in range(relax_steps):
        seeds = np.sort(_recentred_seeds(owner, inside, padded.shape, len(seeds)))
        owner = _grow(flat, padded.shape, seeds)
    fragment_to_neuron = np.r_[0, flat[seeds]].astype(np.uint32)
    fragments = owner.reshape(padded.shape)[1:-1, 1:-1, 1:-1]
    return np.ascontiguousarray(fragments), fragment_to_neuron


def _scatter_seeds(labels, inside, fragment_size, rng):
    """Sorted flat indices of seed voxels, scattered at random: one per `fragment_size`
    voxels of each connected piece of a neuron (rounded, at least one per piece)."""
    pieces = connected_components(labels, background=0, connectivity=1).reshape(-1)[inside]
    size = np.bincount(pieces)
    wanted = np.maximum(1, np.rint(size / fragment_size)).astype(np.int64)
    # About four candidates per wanted seed, then exactly the wanted number of them per
    # piece: plain coin flips would leave the odd big piece with one or two seeds.
    chance = np.minimum(1.0, np.divide(4.0 * wanted, size, out=np.ones(len(size)),
                                       where=size > 0)).astype(np.float32)
    candidates = np.flatnonzero(rng.random(len(inside), dtype=np.float32) < chance[pieces])
    owner = pieces[candidates]
    order = np.lexsort((rng.random(len(candidates)), owner))
    candidates, owner = candidates[order], owner[order]
    rank = np.arange(len(owner)) - np.searchsorted(owner, owner)
    chosen = [candidates[rank < wanted[owner]]]
    # A piece that drew no candidate at all (a tiny one, or bad luck) still needs a seed.
    first = np.full(len(size), len(inside), np.int64)
    np.minimum.at(first, pieces, np.arange(len(inside)))
    unseeded = (np.bincount(owner, minlength=len(size)) == 0) & (size > 0)
    chosen.append(first[unseeded])
    return inside[np.sort(np.concatenate(chosen))]


def _grow(flat_labels, shape, seeds):
    """Breadth-first flood from the seeds, never crossing into another neuron: each
    voxel gets the id (1..) of the seed it is fewest face steps from, within its neuron.
    Ties go to the first claimant in a fixed order, so the result is deterministic.
    `shape` must have a background border (the flood does not check bounds)."""
    owner = np.zeros(flat_labels.size, np.uint32)
    owner[seeds] = np.arange(1, len(seeds) + 1, dtype=np.uint32)
    stride = shape[1] * shape[2], shape[2], 1
    steps = [sign * s for s in stride for sign in (-1, 1)]
    frontier = seeds
    while frontier.size:
        neuron, claimant = flat_labels[frontier], owner[frontier]
        claimed = []
        for step in steps:
            target = frontier + step
            free = (owner[target] == 0) & (flat_labels[target] == neuron)
            target = target[free]
            # Claimed at once, so a later direction cannot take the same voxel twice.
            owner[target] = claimant[free]
            claimed.append(target)
        frontier = np.concatenate(claimed)
    return owner


def _recentred_seeds(owner, inside, shape, n_fragments):
    """Per fragment, the voxel nearest its centroid (in voxel units)."""
    fragment = owner[inside]
    counts = np.bincount(fragment, minlength=n_fragments + 1)[1:]
    distance2 = np.zeros(len(inside), np.float32)
    strides = (shape[1] * shape[2], shape[2], 1)
    for axis, stride in enumerate(strides):
        coord = ((inside // stride) % shape[axis]).astype(np.float32)
        centre = np.bincount(fragment, weights=coord, minlength=n_fragments + 1)[1:] / counts
        coord -= centre.astype(np.float32)[fragment - 1]
        distance2 += coord * coord
    # Non-negative float32 bit patterns sort like the values, so one packed uint64 key
    # (distance high, voxel position low) finds each fragment's nearest voxel in one pass.
    key = distance2.view(np.uint32).astype(np.uint64) << np.uint64(32)
    key |= np.arange(len(inside), dtype=np.uint64)
    best = np.full(n_fragments + 1, np.iinfo(np.uint64).max, np.uint64)
    np.minimum.at(best, fragment, key)
    return inside[(best[1:] & np.uint64(0xFFFFFFFF)).astype(np.int64)]
