"""Per-block steps of barcode decoding: register, normalise, smooth, decode, fill.

Every step is local (a voxel depends on a neighbourhood of known radius), so a block
read with that much halo gives exactly what the whole volume would: `decode` in
barcodes.py runs these on one block (numpy) or on many (dask) with the same result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from .barcode_codebook import pack_bits
from .barcode_kernels import (
    decode_planes,
    nearest_rows,
    parallel_ranges,
    pool,
    prepare_channels,
    scratch,
    similarity_to_codes,
)


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
    edge_share: float = 0.4  # a cell ends where its voxels hold less of its profile (0: no edge step)
    edge_iterations: int = 2

    def smoothing_radius(self) -> int:
        """How far `prepare` reads around a voxel (smoothing and round shifts together)."""
        widest = 0.0 if self.shifts is None else float(np.abs(self.shifts).max())
        return int(math.ceil((4.0 * self.sigma if self.sigma > 0 else 0.0) + widest))

    def growth_radius(self) -> int:
        """How far filling and border unmixing reach, on top of prepare's halo."""
        return self.fill_iterations + self.border_iterations + (self.edge_iterations if self.edge_share > 0 else 0)


def prepare(block: np.ndarray, settings: DecodeSettings, out: np.ndarray | None = None) -> np.ndarray:
    """Registered, normalised (0 = background, 1 = bright), smoothed float32 channels.

    A round's sub-voxel shift is folded into the smoothing: one off-centre gaussian per
    axis moves and smooths at once, as the optics did (linear interpolation would blur
    each round differently), and it costs no more than the smoothing alone.
    """
    raw = _raw(block)
    out = np.empty(raw.shape, np.float32) if out is None else out
    args = _levels_and_taps(settings, raw.shape[0])
    list(pool().map(lambda c: prepare_channels(raw, *args, c[0], c[1], out), parallel_ranges(raw.shape[0])))
    return out


def _raw(block: np.ndarray) -> np.ndarray:
    raw = np.ascontiguousarray(block)
    return raw if raw.dtype in (np.uint8, np.uint16, np.int16, np.float32) else raw.astype(np.float32)


def _levels_and_taps(s: DecodeSettings, n_channels: int):
    """low, scale, and per channel and axis (z, y, x) the correlation taps and their count."""
    low = np.asarray(s.low, np.float32)
    scale = np.maximum(np.asarray(s.high, np.float32) - low, np.float32(1e-6))
    shifts = np.zeros((n_channels, 3)) if s.shifts is None else np.asarray(s.shifts, float)
    weights = [[shifted_gaussian(s.sigma, float(move)) for move in shift] for shift in shifts]
    n_taps = np.array([[len(w) for w in axes] for axes in weights], np.int64)
    taps = np.zeros((n_channels, 3, n_taps.max()), np.float32)
    for c, axes in enumerate(weights):
        for axis, w in enumerate(axes):
            taps[c, axis, :len(w)] = w
    return low, scale, taps, n_taps


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


def nearest_code(x: np.ndarray, centroids: np.ndarray, cosine: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Index of the code of largest dot product and that dot product, per vector of the
    (C, ...) x; with `cosine`, divided by the vector's length (the cosine similarity,
    without making unit vectors first)."""
    flat = np.ascontiguousarray(x.reshape(x.shape[0], -1), dtype=np.float32)
    n = flat.shape[1]
    best, dot, norm, peak = (np.empty(n, t) for t in (np.int32, np.float32, np.float32, np.float32))
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)

    def match(bounds: tuple[int, int]) -> None:
        nearest_rows(flat, centroids, bounds[0], bounds[1], best, dot, norm, peak)

    list(pool().map(match, parallel_ranges(n)))
    similarity = dot / np.maximum(norm, np.float32(1e-6)) if cosine else dot
    return best.reshape(x.shape[1:]), similarity.reshape(x.shape[1:])


def threshold_code(x: np.ndarray, thresholds: np.ndarray, code_numbers: np.ndarray) -> np.ndarray:
    """Index into the codebook of each voxel's exact bit pattern, -1 when not in it."""
    number = pack_bits(x > thresholds[:, None, None, None], axis=0)
    order = np.argsort(code_numbers)
    pos = np.clip(np.searchsorted(code_numbers[order], number), 0, len(order) - 1)
    return np.where(code_numbers[order][pos] == number, order[pos], -1).astype(np.int32)


def decode_block(block: np.ndarray, settings: DecodeSettings, method: str) -> np.ndarray:
    """(3, z, y, x) float32: code (1-based, 0 = none), similarity, foreground."""
    return _decode(block, settings, method, np.float32, False)


def decode_codes(block: np.ndarray, settings: DecodeSettings, method: str) -> np.ndarray:
    """(1, z, y, x) int32: the codes of `decode_block` alone."""
    return _decode(block, settings, method, np.int32, True)


def _decode(block, s: DecodeSettings, method: str, dtype, codes_only: bool) -> np.ndarray:
    raw = _raw(block)
    plane = (raw.shape[1], raw.shape[2] * raw.shape[3])
    code = np.empty((1,) + plane, dtype)
    rest = scratch((2,) + plane, np.float32) if codes_only else np.empty((2,) + plane, np.float32)
    args = _levels_and_taps(s, raw.shape[0])
    centroids = np.ascontiguousarray(s.centroids, dtype=np.float32)

    def run(bounds: tuple[int, int]) -> None:
        decode_planes(raw, *args, centroids, np.float32(s.foreground_threshold), np.float32(s.min_similarity),
                      bounds[0], bounds[1], code[0], rest[0], rest[1])

    list(pool().map(run, parallel_ranges(raw.shape[1])))
    if method == "threshold":
        index = threshold_code(prepare(raw, s), s.thresholds, s.code_numbers).reshape(plane)
        code[0] = np.where((rest[1] > 0) & (index >= 0), index + 1, 0)
    out = code if codes_only else np.concatenate([code, rest])
    return out.reshape((len(out),) + raw.shape[1:])


def fill_block(block: np.ndarray, codes: np.ndarray, settings: DecodeSettings) -> np.ndarray:
    """(2, z, y, x) float32: code after filling undecoded foreground, and confidence.

    Voxels on the border between two cells mix both cells' tags and decode poorly; they
    are filled from the decoded cores outwards, each taking the neighbouring code that
    explains most of its intensity (projection onto the code's mean intensity profile),
    then every border voxel is re-decided by unmixing the two adjacent cells, and each
    cell's outer edge is put where its voxels hold less than `edge_share` of its profile.
    """
    s = settings
    x = prepare(block, s, out=scratch(block.shape, np.float32))  # never leaves this call
    fg = x.max(axis=0) > np.float32(s.foreground_threshold)
    profiles = s.profiles if s.profiles is not None else s.centroids
    profiles = np.ascontiguousarray(profiles, dtype=np.float32)
    filled = _grow_codes(np.ascontiguousarray(codes, dtype=np.int32), fg, x, profiles, s.fill_iterations,
                         np.float32(-np.inf))  # undecoded foreground: any share
    if s.border_iterations:
        filled = _unmix_borders(filled, fg, x, profiles, s.border_iterations)
    if s.edge_share > 0 and s.profiles is not None:
        filled = _settle_edges(filled, x, profiles, np.float32(s.edge_share), s.edge_iterations)
    out = np.empty((2,) + filled.shape, np.float32)
    out[0] = filled
    similarity_to_codes(x.reshape(x.shape[0], -1), filled.ravel(), np.ascontiguousarray(s.centroids, np.float32),
                        out[1].reshape(-1))
    return out


@numba.njit(cache=True, nogil=True)
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


@numba.njit(cache=True, nogil=True)
def _neighbour_code(codes, d, z, y, x_):
    """The code of the d-th face neighbour of (z, y, x_); 0 beyond the block's edge."""
    zz, yy, xx = _neighbour(d, z, y, x_)
    nz, ny, nx = codes.shape
    if zz < 0 or yy < 0 or xx < 0 or zz >= nz or yy >= ny or xx >= nx:
        return 0
    return codes[zz, yy, xx]


@numba.njit(cache=True, nogil=True)
def _share(x, profiles, code, z, y, x_):
    """How much of `code`'s mean intensity profile voxel (z, y, x_) holds (1: as bright as
    the cell's average, 0.5: half of it, as at the edge of a blurred cell)."""
    dot = 0.0
    norm = 1e-12
    for c in range(x.shape[0]):
        dot += x[c, z, y, x_] * profiles[code - 1, c]
        norm += profiles[code - 1, c] * profiles[code - 1, c]
    return dot / norm


@numba.njit(cache=True, nogil=True)
def _settle_edges(codes, x, profiles, min_share, iterations):
    """Put each cell's edge where its voxels fall below `min_share` of its own profile.

    One foreground threshold on raw brightness cannot: dim cells lose their surface while
    the blur of bright ones spills into the background. Unlabelled voxels next to a cell
    join it when they hold that share, `iterations` times; then voxels on a cell's surface
    holding less are cleared (inside a cell a dim voxel is a missing stain, not an edge)."""
    current = _grow_codes(codes, np.ones(codes.shape, np.bool_), x, profiles, iterations, min_share)
    trimmed = current.copy()
    nz, ny, nx = codes.shape
    for z in range(nz):
        for y in range(ny):
            for x_ in range(nx):
                code = current[z, y, x_]
                if code == 0:
                    continue
                surface = False
                for d in range(6):
                    if _neighbour_code(current, d, z, y, x_) != code:
                        surface = True
                if surface and _share(x, profiles, code, z, y, x_) < min_share:
                    trimmed[z, y, x_] = 0
    return trimmed


@numba.njit(cache=True, nogil=True)
def _grow_codes(codes, allowed, x, profiles, iterations, min_share):
    """Unlabelled `allowed` voxels take the neighbouring code whose profile they hold most
    of (at least `min_share`), one layer per iteration."""
    nz, ny, nx = codes.shape
    current = codes.copy()
    for _ in range(iterations):
        nxt = current.copy()
        changed = 0
        for z in range(nz):
            for y in range(ny):
                for x_ in range(nx):
                    if current[z, y, x_] != 0 or not allowed[z, y, x_]:
                        continue
                    best_share = min_share
                    best_code = 0
                    for d in range(6):
                        code = _neighbour_code(current, d, z, y, x_)
                        if code == 0:
                            continue
                        share = _share(x, profiles, code, z, y, x_)
                        if share >= min_share and (best_code == 0 or share > best_share
                                                   or (share == best_share and code < best_code)):
                            best_share = share
                            best_code = code
                    if best_code != 0:
                        nxt[z, y, x_] = best_code
                        changed += 1
        current = nxt
        if changed == 0:
            break
    return current


@numba.njit(cache=True, nogil=True)
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
