"""Compiled per-voxel kernels of barcode decoding: smoothing, nearest code, confidence.

They run serially and release the GIL: dask runs one block per core, and whole-volume
steps (learning) split the work over a small thread pool. No fast-math: every voxel goes
through the same float32 operations wherever it sits in a block, so a chunked run gives
bit for bit the numbers of an in-memory run.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

_scratch: dict[int, np.ndarray] = {}


def scratch(shape: tuple[int, ...], dtype) -> np.ndarray:
    """A work array of this thread's, reused from call to call: fresh memory of this size
    costs the kernel a page fault per 4 KiB, more than the smoothing itself. Whatever
    uses it must not hand it out; `release_scratch` lets the buffers go after a run."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buffer = _scratch.get(threading.get_ident())
    if buffer is None or buffer.nbytes < size:
        buffer = _scratch[threading.get_ident()] = np.empty(size, np.uint8)
    return buffer[:size].view(dtype).reshape(shape)


def release_scratch() -> None:
    _scratch.clear()  # a buffer still in use lives on until its user is done


@functools.cache
def pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="wbe-decode")


def parallel_ranges(n: int, pieces: int | None = None) -> list[tuple[int, int]]:
    """`n` items cut into about one contiguous range per worker (at least one item each)."""
    pieces = max(1, min(n, pieces or (os.cpu_count() or 1)))
    edges = np.linspace(0, n, pieces + 1).astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]


@numba.njit(cache=True, nogil=True)
def _reflect(i, n):
    """scipy.ndimage's "reflect" edge (d c b a | a b c d | d c b a)."""
    while i < 0 or i >= n:
        if i < 0:
            i = -i - 1
        if i >= n:
            i = 2 * n - i - 1
    return i


@numba.njit(cache=True, nogil=True)
def _smooth_x(src, dst, w, n):
    """Correlate the rows of a (y, x) plane with the n taps w; tap by tap over whole rows,
    so that the loops vectorise."""
    ny, nx = src.shape
    r = n // 2
    for y in range(ny):
        s, d = src[y], dst[y]
        d[:] = 0.0
        for k in range(n):
            wk, o = w[k], k - r
            lo, hi = min(max(0, -o), nx), max(min(nx, nx - o), 0)
            inner, shifted = d[lo:hi], s[lo + o:hi + o]  # plain slices: no index checks
            for i in range(hi - lo):
                inner[i] += wk * shifted[i]
            for i in range(lo):
                d[i] += wk * s[_reflect(i + o, nx)]
            for i in range(max(hi, lo), nx):
                d[i] += wk * s[_reflect(i + o, nx)]


@numba.njit(cache=True, nogil=True)
def _plane_xy(raw, p, low, scale, taps, n_taps, tmp, dst):
    """Plane p of one channel normalised ((raw - low) / scale, clipped at 0), then
    correlated along x and y, into dst."""
    ny, nx = dst.shape
    for y in range(ny):
        for i in range(nx):
            v = (np.float32(raw[p, y, i]) - low) / scale
            dst[y, i] = v if v > 0 else np.float32(0.0)
    _smooth_x(dst, tmp, taps[2], n_taps[2])
    r = n_taps[1] // 2
    for y in range(ny):
        row = dst[y]
        row[:] = 0.0
        for k in range(n_taps[1]):
            wk, source = taps[1, k], tmp[_reflect(y + k - r, ny)]
            for i in range(nx):
                row[i] += wk * source[i]


@numba.njit(cache=True, nogil=True)
def channel_plane(raw, z, low, scale, taps, n_taps, ring, held, tmp, dst):
    """Plane z of one prepared channel into dst (y, x): normalised, then correlated along
    x, y and z (taps: (3, n) per axis z, y, x; n_taps: their counts).

    Planes smoothed along x and y wait in `ring` (slot p % n_taps[0], `held` says which
    plane a slot holds, -1 for none), so each is made once while z runs up: the work
    stays in cache instead of streaming the whole block through memory once per axis."""
    nz = raw.shape[0]
    size, r = n_taps[0], n_taps[0] // 2
    dst[:] = 0.0
    for k in range(n_taps[0]):
        p = _reflect(z + k - r, nz)
        slot = p % size
        if held[slot] != p:
            _plane_xy(raw, p, low, scale, taps, n_taps, tmp, ring[slot])
            held[slot] = p
        wk, plane = taps[0, k], ring[slot]
        for y in range(dst.shape[0]):
            d, source = dst[y], plane[y]
            for i in range(dst.shape[1]):
                d[i] += wk * source[i]


@numba.njit(cache=True, nogil=True)
def prepare_channels(raw, low, scale, taps, n_taps, c0, c1, out):
    """Channels c0..c1 of the (c, z, y, x) raw block, prepared into out (float32)."""
    _, nz, ny, nx = raw.shape
    tmp = np.empty((ny, nx), np.float32)
    ring = np.empty((n_taps[:, 0].max(), ny, nx), np.float32)
    held = np.empty(ring.shape[0], np.int64)
    for c in range(c0, c1):
        held[:] = -1
        for z in range(nz):
            channel_plane(raw[c], z, low[c], scale[c], taps[c], n_taps[c], ring, held, tmp, out[c, z])


@numba.njit(cache=True, nogil=True)
def decode_planes(raw, low, scale, taps, n_taps, centroids, threshold, min_similarity, z0, z1, code, similarity,
                  fg):
    """Planes z0..z1 prepared and decoded (see decode_voxels) without keeping the channels:
    code, similarity and fg are (z, y * x)."""
    n_ch, _, ny, nx = raw.shape
    size = n_taps[:, 0].max()
    ring = np.empty((n_ch, size, ny, nx), np.float32)
    held = np.full((n_ch, size), -1, np.int64)
    tmp = np.empty((ny, nx), np.float32)
    plane = np.empty((n_ch, ny * nx), np.float32)
    for z in range(z0, z1):
        for c in range(n_ch):
            channel_plane(raw[c], z, low[c], scale[c], taps[c], n_taps[c], ring[c], held[c], tmp,
                          plane[c].reshape((ny, nx)))
        decode_voxels(plane, centroids, threshold, min_similarity, 0, ny * nx, code[z], similarity[z], fg[z])


@numba.njit(cache=True, nogil=True)
def nearest_rows(x, centroids, first, last, best_index, best_dot, norm, peak):
    """For the voxels first..last of the (C, n) x: the code of largest dot product with
    the (K, C) centroids, that dot product, the vector's length and its brightest channel.
    Scale-free, so the most similar code by cosine is the arg-max of the plain dot product.
    Runs of 256 voxels at a time, written so that the loops over voxels vectorise."""
    n_ch = x.shape[0]
    block = 256
    buffer = np.empty(block, np.float32)
    for start in range(first, last, block):
        m = min(block, last - start)
        bd, bi = best_dot[start:start + m], best_index[start:start + m]
        nm, pk = norm[start:start + m], peak[start:start + m]
        nm[:] = 0.0
        pk[:] = x[0, start:start + m]
        for c in range(n_ch):
            row = x[c, start:start + m]
            for i in range(m):
                nm[i] += row[i] * row[i]
                pk[i] = max(pk[i], row[i])
        for i in range(m):
            nm[i] = np.sqrt(nm[i])
        bd[:] = -np.inf
        bi[:] = 0
        acc = buffer[:m]
        for k in range(centroids.shape[0]):
            acc[:] = 0.0
            for c in range(n_ch):
                w = centroids[k, c]
                row = x[c, start:start + m]
                for i in range(m):
                    acc[i] += w * row[i]
            for i in range(m):
                better = acc[i] > bd[i]
                bd[i] = acc[i] if better else bd[i]
                bi[i] = k if better else bi[i]


@numba.njit(cache=True, nogil=True)
def decode_voxels(x, centroids, threshold, min_similarity, first, last, code, similarity, fg):
    """Per voxel first..last of the (C, n) x: code (1-based, 0 = undecoded), cosine similarity to the
    nearest code (0 off the foreground) and foreground (some tag above `threshold`)."""
    n = x.shape[1]
    index = np.empty(n, np.int32)
    dot = np.empty(n, np.float32)
    norm = np.empty(n, np.float32)
    peak = np.empty(n, np.float32)
    nearest_rows(x, centroids, first, last, index, dot, norm, peak)
    for i in range(first, last):
        if peak[i] > threshold:
            s = dot[i] / max(norm[i], np.float32(1e-6))
            similarity[i] = s
            fg[i] = 1.0
            code[i] = index[i] + 1 if s >= min_similarity else 0
        else:
            similarity[i] = 0.0
            fg[i] = 0.0
            code[i] = 0


@numba.njit(cache=True, nogil=True)
def similarity_to_codes(x, codes, centroids, out):
    """Into out (n,): cosine similarity of each voxel of the (C, n) x to its code's centroid (0: none)."""
    n_ch, n = x.shape
    for i in range(n):
        k = codes[i]
        out[i] = 0.0
        if k == 0:
            continue
        dot = np.float32(0.0)
        norm = np.float32(0.0)
        for c in range(n_ch):
            v = x[c, i]
            dot += v * centroids[k - 1, c]
            norm += v * v
        out[i] = dot / max(np.sqrt(norm), np.float32(1e-6))


@numba.njit(cache=True, nogil=True)
def group_sums_kernel(groups, values, n_groups):
    """(n_groups, C) float64 sums of the (C, n) values' columns by group; groups < 0 skipped.
    Summed in voxel order, as np.bincount does."""
    n_ch, n = values.shape
    sums = np.zeros((n_groups, n_ch), np.float64)
    for i in range(n):
        g = groups[i]
        if g < 0:
            continue
        for c in range(n_ch):
            sums[g, c] += values[c, i]
    return sums


@numba.njit(cache=True, nogil=True)
def bits_above(x, levels, mask):
    """(z, y, x) int64 numbers of each voxel's bits x > level (bit c weighs 2**c), 0 off `mask`."""
    n_ch, nz, ny, nx = x.shape
    out = np.zeros((nz, ny, nx), np.int64)
    for z in range(nz):
        for y in range(ny):
            for i in range(nx):
                if mask[z, y, i]:
                    number = 0
                    for c in range(n_ch):
                        if x[c, z, y, i] > levels[c]:
                            number |= 1 << c
                    out[z, y, i] = number
    return out


@numba.njit(cache=True, nogil=True)
def interior(values, valid):
    """Valid voxels whose value equals that of all six face neighbours (wrapping around
    the edges, as np.roll does)."""
    nz, ny, nx = values.shape
    out = np.zeros((nz, ny, nx), np.bool_)
    for z in range(nz):
        for y in range(ny):
            for i in range(nx):
                if not valid[z, y, i]:
                    continue
                v = values[z, y, i]
                out[z, y, i] = (values[(z - 1) % nz, y, i] == v and values[(z + 1) % nz, y, i] == v
                                and values[z, (y - 1) % ny, i] == v and values[z, (y + 1) % ny, i] == v
                                and values[z, y, (i - 1) % nx] == v and values[z, y, (i + 1) % nx] == v)
    return out
