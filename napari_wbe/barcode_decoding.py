"""Per-block steps of barcode decoding: register, normalise, smooth, decode, fill.

Every step is local (a voxel depends on a neighbourhood of known radius), so a block
read with that much halo gives exactly what the whole volume would: `decode` in
barcodes.py runs these on one block (numpy) or on many (dask) with the same result.
"""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np
from scipy import ndimage as ndi

from .barcode_codebook import pack_bits

# Voxels matched to codes in slabs of this many, to bound the (voxels x codes) matrix.
_SLAB = 1 << 17


@dataclass(frozen=True)
class DecodeSettings:
    """Everything a block needs besides its voxels (all global, fixed before decoding)."""

    low: np.ndarray  # (C,) background level per channel
    high: np.ndarray  # (C,) bright level per channel (maps to 1)
    centroids: np.ndarray  # (K, C) unit vectors, one per code
    sigma: float  # smoothing, voxels
    foreground_threshold: float  # on the brightest normalised channel
    min_similarity: float  # cosine similarity a voxel needs to count as decoded
    profiles: np.ndarray | None = None  # (K, C) mean normalised intensities, one per code
    shifts: np.ndarray | None = None  # (C, 3) voxels to move each channel by (round registration)
    thresholds: np.ndarray | None = None  # (C,) per-channel thresholds for method "threshold"
    code_numbers: np.ndarray | None = None  # packed codes, for method "threshold"
    fill_iterations: int = 8
    border_iterations: int = 2

    def smoothing_radius(self) -> int:
        """How far `prepare` reads around a voxel (smoothing and round shifts together)."""
        widest = 0.0 if self.shifts is None else float(np.abs(self.shifts).max())
        return int(math.ceil((4.0 * self.sigma if self.sigma > 0 else 0.0) + widest))

    def growth_radius(self) -> int:
        """How far filling and border unmixing reach, on top of prepare's halo."""
        return self.fill_iterations + self.border_iterations


def prepare(block: np.ndarray, settings: DecodeSettings) -> np.ndarray:
    """Registered, normalised (0 = background, 1 = bright), smoothed float32 channels.

    A round's sub-voxel shift is folded into the smoothing: one off-centre gaussian per
    axis moves and smooths at once, as the optics did (linear interpolation would blur
    each round differently), and it costs no more than the smoothing alone.
    """
    s = settings
    x = block.astype(np.float32, copy=False)
    out = np.empty(x.shape, np.float32)
    scale = np.maximum(s.high - s.low, 1e-6).astype(np.float32)
    for c in range(x.shape[0]):
        channel = np.maximum((x[c] - np.float32(s.low[c])) / scale[c], 0.0)
        shift = (0.0, 0.0, 0.0) if s.shifts is None else s.shifts[c]
        for axis, move in enumerate(shift):
            weights = shifted_gaussian(s.sigma, float(move))
            if len(weights) > 1:
                channel = ndi.correlate1d(channel, weights, axis=axis, mode="reflect")
        out[c] = channel
    return out


def shifted_gaussian(sigma: float, shift: float) -> np.ndarray:
    """Correlation weights that smooth by `sigma` and move content by `shift` voxels
    (what sits at p comes to p + shift); linear interpolation weights when sigma is 0."""
    if sigma <= 0:
        if shift == 0:
            return np.ones(1, np.float32)
        radius = int(math.ceil(abs(shift)))
        offsets = np.arange(-radius, radius + 1)
        weights = np.maximum(1.0 - np.abs(offsets + shift), 0.0)
    else:
        radius = int(math.ceil(4.0 * sigma + abs(shift)))
        offsets = np.arange(-radius, radius + 1)
        weights = np.exp(-0.5 * ((offsets + shift) / sigma) ** 2)
    return (weights / weights.sum()).astype(np.float32)


def unit_vectors(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    magnitude = np.sqrt(np.einsum("c...,c...->...", x, x))
    return x / np.maximum(magnitude, 1e-6), magnitude


def foreground(x: np.ndarray, threshold: float) -> np.ndarray:
    """Voxels where some tag is clearly above background."""
    return x.max(axis=0) > threshold


def nearest_code(u: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the most similar code (cosine) and that similarity, per voxel."""
    flat = u.reshape(u.shape[0], -1)
    best = np.empty(flat.shape[1], np.int32)
    similarity = np.empty(flat.shape[1], np.float32)
    cent_t = np.ascontiguousarray(np.asarray(centroids, dtype=np.float32).T)  # (C, K)

    def match(start: int) -> None:
        # (voxels, codes), so the arg-max runs along contiguous rows
        sims = np.ascontiguousarray(flat[:, start:start + _SLAB].T) @ cent_t
        index = sims.argmax(axis=1)
        best[start:start + _SLAB] = index
        similarity[start:start + _SLAB] = sims[np.arange(len(index)), index]

    # numpy releases the GIL here, so slabs share the cores (learning runs outside dask)
    list(_pool().map(match, range(0, flat.shape[1], _SLAB)))
    return best.reshape(u.shape[1:]), similarity.reshape(u.shape[1:])


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="wbe-decode")


def threshold_code(x: np.ndarray, thresholds: np.ndarray, code_numbers: np.ndarray) -> np.ndarray:
    """Index into the codebook of each voxel's exact bit pattern, -1 when not in it."""
    number = pack_bits(x > thresholds[:, None, None, None], axis=0)
    order = np.argsort(code_numbers)
    pos = np.clip(np.searchsorted(code_numbers[order], number), 0, len(order) - 1)
    return np.where(code_numbers[order][pos] == number, order[pos], -1).astype(np.int32)


def decode_block(block: np.ndarray, settings: DecodeSettings, method: str) -> np.ndarray:
    """(3, z, y, x) float32: code (1-based, 0 = none), similarity, foreground."""
    s = settings
    x = prepare(block, s)
    u, _ = unit_vectors(x)
    fg = foreground(x, s.foreground_threshold)
    index = np.zeros(fg.shape, np.int32)
    similarity = np.zeros(fg.shape, np.float32)
    index[fg], similarity[fg] = (a.ravel() for a in nearest_code(u[:, fg], s.centroids))
    if method == "threshold":
        index = threshold_code(x, s.thresholds, s.code_numbers)
        confident = fg & (index >= 0)
    else:
        confident = fg & (similarity >= s.min_similarity)
    code = np.where(confident, index + 1, 0)
    return np.stack([code.astype(np.float32), similarity, fg.astype(np.float32)])


def fill_block(block: np.ndarray, settings: DecodeSettings) -> np.ndarray:
    """(2, z, y, x) float32: code after filling undecoded foreground, and confidence.

    `block` holds the tag channels and, as its last channel, the decoded codes.

    Voxels on the border between two cells mix both cells' tags and decode poorly; they
    are filled from the decoded cores outwards, each taking the neighbouring code that
    explains most of its intensity (projection onto the code's mean intensity profile),
    then every border voxel is re-decided by unmixing the two adjacent cells.
    """
    s = settings
    codes = block[-1]
    x = prepare(block[:-1], s)
    u, _ = unit_vectors(x)
    fg = foreground(x, s.foreground_threshold)
    profiles = s.profiles if s.profiles is not None else s.centroids
    x = np.ascontiguousarray(x)
    profiles = np.ascontiguousarray(profiles, dtype=np.float32)
    filled = _grow_codes(codes.astype(np.int32), fg, x, profiles, s.fill_iterations)
    if s.border_iterations:
        filled = _unmix_borders(filled, fg, x, profiles, s.border_iterations)
    confidence = _similarity_to(filled, u, s.centroids)
    return np.stack([filled.astype(np.float32), confidence])


def _similarity_to(codes: np.ndarray, u: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    padded = np.vstack([np.zeros((1, centroids.shape[1]), np.float32), centroids.astype(np.float32)])
    chosen = padded[codes]  # (z, y, x, C)
    return np.einsum("c...,...c->...", u, chosen).astype(np.float32)


@numba.njit(cache=True)
def _neighbour(d, z, y, x_):
    """The d-th (0..5) face neighbour of voxel (z, y, x_)."""
    if d == 0:
        return z - 1, y, x_
    if d == 1:
        return z + 1, y, x_
    if d == 2:
        return z, y - 1, x_
    if d == 3:
        return z, y + 1, x_
    if d == 4:
        return z, y, x_ - 1
    return z, y, x_ + 1


@numba.njit(cache=True)
def _neighbour_code(codes, d, z, y, x_):
    """The code of the d-th face neighbour of (z, y, x_); 0 beyond the block's edge."""
    zz, yy, xx = _neighbour(d, z, y, x_)
    nz, ny, nx = codes.shape
    if zz < 0 or yy < 0 or xx < 0 or zz >= nz or yy >= ny or xx >= nx:
        return 0
    return codes[zz, yy, xx]


@numba.njit(cache=True)
def _grow_codes(codes, fg, x, profiles, iterations):
    nz, ny, nx = codes.shape
    current = codes.copy()
    for _ in range(iterations):
        nxt = current.copy()
        changed = 0
        for z in range(nz):
            for y in range(ny):
                for x_ in range(nx):
                    if current[z, y, x_] != 0 or not fg[z, y, x_]:
                        continue
                    best_score = -2.0
                    best_code = 0
                    for d in range(6):
                        code = _neighbour_code(current, d, z, y, x_)
                        if code == 0:
                            continue
                        dot = 0.0
                        norm = 1e-12
                        for c in range(x.shape[0]):
                            dot += x[c, z, y, x_] * profiles[code - 1, c]
                            norm += profiles[code - 1, c] * profiles[code - 1, c]
                        score = dot / norm
                        if score > best_score or (score == best_score and code < best_code):
                            best_score = score
                            best_code = code
                    if best_code != 0:
                        nxt[z, y, x_] = best_code
                        changed += 1
        current = nxt
        if changed == 0:
            break
    return current



@numba.njit(cache=True)
def _unmix_borders(codes, fg, x, profiles, iterations):
    """Re-decide border voxels by two-cell unmixing.

    A voxel on the border of cells A and B sees a blur of both; fitting x ~ a*pA + b*pB
    (least squares over every pair of adjacent codes, the best-fitting pair wins) gives it
    to the cell with the larger share, whatever the two cells' brightness."""
    nz, ny, nx = codes.shape
    current = codes.copy()
    candidates = np.zeros(7, np.int64)
    for _ in range(iterations):
        nxt = current.copy()
        for z in range(nz):
            for y in range(ny):
                for x_ in range(nx):
                    own = current[z, y, x_]
                    if own == 0 or not fg[z, y, x_]:
                        continue
                    n = 1
                    candidates[0] = own
                    for d in range(6):
                        code = _neighbour_code(current, d, z, y, x_)
                        if code == 0:
                            continue
                        seen = False
                        for k in range(n):
                            if candidates[k] == code:
                                seen = True
                        if not seen:
                            candidates[n] = code
                            n += 1
                    if n == 1:
                        continue
                    best_residual = 1e30
                    best_code = own
                    for i in range(n):
                        for j in range(i + 1, n):
                            pi = profiles[candidates[i] - 1]
                            pj = profiles[candidates[j] - 1]
                            gii = 0.0
                            gij = 0.0
                            gjj = 0.0
                            ri = 0.0
                            rj = 0.0
                            xx2 = 0.0
                            for c in range(x.shape[0]):
                                v = x[c, z, y, x_]
                                gii += pi[c] * pi[c]
                                gij += pi[c] * pj[c]
                                gjj += pj[c] * pj[c]
                                ri += pi[c] * v
                                rj += pj[c] * v
                                xx2 += v * v
                            det = gii * gjj - gij * gij
                            if det <= 1e-12:
                                continue
                            a = (gjj * ri - gij * rj) / det
                            b = (gii * rj - gij * ri) / det
                            residual = xx2 - 2 * (a * ri + b * rj) + a * a * gii + 2 * a * b * gij + b * b * gjj
                            if residual < best_residual:
                                best_residual = residual
                                best_code = candidates[i] if a >= b else candidates[j]
                    nxt[z, y, x_] = best_code
        current = nxt
    return current
