"""Block-wise functions that need a margin of their neighbours' voxels, with memory bounded
by the block size rather than the volume size.

`dask.array.map_overlap` cuts each neighbour's margin as a numpy *view* of the neighbour's
block, and a view keeps its whole block alive; worse, a block read for its neighbours'
margins stays in memory until its own turn. A decode of 256 x 1024 x 1024 x 18 held 5-7 GiB
that way. Here margins are exchanged through files: a first pass reads every block once
and writes its outer planes (`halo` thick, one file per face, in `scratch`); the second
pass reads each block again with the slabs it needs from its neighbours' face files
(memory-mapped, so only those voxels are read). Each task holds one block, whatever the
volume's size. Without `scratch` (data already in memory) the slabs are copied in memory.
Blocks read no margin beyond the volume's edge, as a whole-volume run would not, so the
result does not depend on the chunking.
"""

from __future__ import annotations

import itertools
import os

import dask
import dask.array as da
import numpy as np
from dask.array.overlap import ensure_minimum_chunksize
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

OFFSETS = [o for o in itertools.product((-1, 0, 1), repeat=3) if o != (0, 0, 0)]


def map_with_halo(function, stack: da.Array, halo: int, n_out: int, *spatial, dtype=np.float32,
                  scratch: str | None = None, **kwargs) -> da.Array:
    """Apply `function` to (channels, z, y, x) blocks of `stack` read with `halo` voxels of
    their neighbours, keeping `n_out` output channels (output blocks = input blocks);
    (z, y, x) arrays in `spatial` come along, with the same margins, as further arguments:
    `function(padded, *padded_spatial, **kwargs)` -> (n_out, z, y, x) of the padded block,
    whose margin is cut off here. `scratch`: a folder for the face files; given, the faces
    are written now (one pass over the inputs) and the returned array reads them."""
    # Margins come from the next block only, so no block may be thinner than the halo.
    chunks = tuple(c if len(c) == 1 else ensure_minimum_chunksize(halo, c) for c in stack.chunks[1:])
    stack = stack.rechunk((stack.shape[0],) + chunks)
    sources = [stack] + [a.rechunk(chunks) for a in spatial]
    name = f"halo-{function.__name__}-{tokenize(function, halo, n_out, dtype, kwargs, *sources)}"
    grid = stack.numblocks[1:]
    margins = [_margins(c, halo) for c in chunks]
    faces = None
    if scratch is not None:
        faces = [os.path.join(scratch, f"{name}-{n}") for n in range(len(sources))]
        dask.compute([_write_faces_tasks(source, folder, margins) for source, folder in zip(sources, faces)])
    graph = {}
    for index in np.ndindex(*grid):
        inputs = [_padded(graph, name, source, index, grid, margins, None if faces is None else faces[n])
                  for n, source in enumerate(sources)]
        crop = tuple(slice(margins[axis][i][0], margins[axis][i][0] + chunks[axis][i]) for axis, i in enumerate(index))
        graph[(name, 0, *index)] = (_apply, function, crop, kwargs, *inputs)
    layer = HighLevelGraph.from_collections(name, graph, dependencies=sources)
    return da.Array(layer, name, ((n_out,),) + chunks, meta=np.empty((0, 0, 0, 0), dtype))


def _margins(chunks: tuple[int, ...], halo: int) -> list[tuple[int, int]]:
    """(before, after) margin of each block along one axis: none at the volume's edges."""
    n = len(chunks)
    return [(halo if i > 0 else 0, halo if i + 1 < n else 0) for i in range(n)]


def _leading(source: da.Array) -> int:
    return source.ndim - 3


def _centre_key(source: da.Array, index) -> tuple:
    return (source.name, *(0,) * _leading(source), *index)


def _window(offset, index, margins) -> tuple[slice, ...] | None:
    """The part of the neighbour at `offset` that block `index` reads (None: nothing)."""
    window = []
    for axis, (o, i) in enumerate(zip(offset, index)):
        before, after = margins[axis][i]
        if (o == -1 and not before) or (o == 1 and not after):
            return None
        window.append(slice(-before, None) if o == -1 else slice(0, after) if o == 1 else slice(None))
    return tuple(window)


def _padded(graph: dict, name: str, source: da.Array, index, grid, margins, faces: str | None):
    """A task building the padded block `index` of `source`: its own block plus a slab of
    each neighbour, copied from the neighbour's block or read from its face file."""
    offsets, keys = [(0, 0, 0)], [_centre_key(source, index)]
    for offset in OFFSETS:
        window = _window(offset, index, margins)
        if window is None:
            continue
        neighbour = tuple(i + o for i, o in zip(index, offset))
        slab = (f"{name}-slab-{source.name}", *neighbour, *offset)
        if faces is None:
            graph[slab] = (_copy_slab, _centre_key(source, neighbour), (Ellipsis, *window))
        else:
            axis = next(a for a, o in enumerate(offset) if o)  # that face file holds the slab
            face_window = list(window)
            face_window[axis] = slice(None)
            graph[slab] = (_read_slab, _face_path(faces, neighbour, axis, offset[axis] == 1),
                           (Ellipsis, *face_window))
        offsets.append(offset)
        keys.append(slab)
    starts = tuple(margins[axis][i][0] for axis, i in enumerate(index))
    ends = tuple(margins[axis][i][1] for axis, i in enumerate(index))
    return (_assemble, starts, ends, offsets, keys)


def _face_path(folder: str, index, axis: int, first: bool) -> str:
    return os.path.join(folder, f"{'-'.join(map(str, index))}-{'zyx'[axis]}-{'first' if first else 'last'}.npy")


def _write_faces_tasks(source: da.Array, folder: str, margins) -> list:
    """One task per block writing the planes its neighbours will read: the first `before`
    planes along an axis for the block before it, the last ones for the block after."""
    os.makedirs(folder, exist_ok=True)
    blocks = source.to_delayed().reshape(source.numblocks[_leading(source):])
    return [dask.delayed(_write_faces)(blocks[index], folder, index, margins) for index in np.ndindex(*blocks.shape)]


def _write_faces(block: np.ndarray, folder: str, index, margins) -> None:
    n = len(margins)
    for axis in range(n):
        i = index[axis]
        for_previous = margins[axis][i - 1][1] if i > 0 else 0  # planes the block before reads
        for_next = margins[axis][i + 1][0] if i + 1 < len(margins[axis]) else 0
        where = [Ellipsis] + [slice(None)] * n
        if for_previous:
            where[1 + axis] = slice(0, for_previous)
            np.save(_face_path(folder, index, axis, True), np.ascontiguousarray(block[tuple(where)]))
        if for_next:
            where[1 + axis] = slice(block.shape[block.ndim - n + axis] - for_next, None)
            np.save(_face_path(folder, index, axis, False), np.ascontiguousarray(block[tuple(where)]))


def _read_slab(path: str, window) -> np.ndarray:
    return np.array(np.load(path, mmap_mode="r")[window])


def _copy_slab(block: np.ndarray, window) -> np.ndarray:
    return np.array(block[window])  # a copy: a view would keep the whole neighbour block


def _assemble(starts, ends, offsets, pieces) -> np.ndarray:
    """The padded block: the centre block (pieces[0]) at `starts`, each slab around it."""
    centre = pieces[0]
    inner = centre.shape[-3:]
    shape = tuple(s + n + e for s, n, e in zip(starts, inner, ends))
    out = np.empty(centre.shape[:-3] + shape, centre.dtype)
    for offset, piece in zip(offsets, pieces):
        where = [slice(s - p, s) if o == -1 else slice(s + n, s + n + p) if o == 1 else slice(s, s + n)
                 for o, s, n, p in zip(offset, starts, inner, piece.shape[-3:])]
        out[(Ellipsis, *where)] = piece
    return out


def _apply(function, crop, kwargs, block, *spatial) -> np.ndarray:
    result = function(block, *spatial, **kwargs)
    return np.ascontiguousarray(result[(slice(None), *crop)])
