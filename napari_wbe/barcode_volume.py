"""Decoding a whole volume block by block: per-voxel codes, small pieces dropped, border
filling, cells labelled and joined, and the results kept in memory or written to OME-Zarr.

The intermediate volumes live in memory for numpy input and in a temporary zarr folder for
a dask input with `out`, so a volume larger than memory decodes with bounded memory; every
step is local (with a halo) or a chunk-wise reduction, so both give the same labels.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import dask.array as da
import numpy as np

from .barcode_decoding import decode_codes, fill_block
from .barcode_kernels import release_scratch
from .chunked_halo import map_with_halo
from .chunked_labels import join_by_value, label_equal_values
from .formats.common import compute_with_progress

# Blocks small enough for both cores to share the work, large enough for little halo.
DEFAULT_CHUNKS = (64, 128, 128)


def _chunked(stack: da.Array, chunks) -> da.Array:
    spatial = stack.shape[1:]
    chunks = DEFAULT_CHUNKS if chunks is None else chunks
    return stack.rechunk((stack.shape[0],) + tuple(min(c, s) for c, s in zip(chunks, spatial)))


def decode_voxels(stack, settings, method, joined_codes, min_size, chunks, out, in_memory, stages):
    """labels, confidence, table (label, size, value = code, first_index, mean_confidence,
    n_pieces) of the voxels of `stack`; `joined_codes`: codes whose pieces are one cell."""
    stack = _chunked(stack, chunks)
    halo = settings.smoothing_radius()
    spatial_chunks = stack.chunks[1:]
    with tempfile.TemporaryDirectory(prefix="wbe-decode-") as tmp:
        store = _Store(tmp, in_memory)
        codes = store.keep_with_halo("codes", stages.within(3), decode_codes, stack, halo, 1, settings=settings,
                                     method=method, dtype=np.int32)[0]
        kept, _ = label_equal_values(codes, min_size=min_size, persist=store.persister("pieces"), output="values")
        kept_codes = store.keep(kept, "kept", None)  # the codes, small pieces removed
        grow = halo + settings.growth_radius()
        filled = store.keep_with_halo("filled", stages.within(4), fill_block, stack, grow, 2, kept_codes,
                                      settings=settings)
        filled_codes = filled[0].astype(np.int32)
        labels, table = label_equal_values(filled_codes, min_size=min_size, persist=store.persister("final"),
                                           weights=filled[1])
        labels, table = join_by_value(labels, table, joined_codes)
        table["mean_confidence"] = table.pop("weight_sum") / table["size"]
        labels = labels if isinstance(labels, da.Array) else da.from_array(labels, chunks=spatial_chunks)
        confidence = da.where(labels > 0, filled[1], np.float32(0)).astype(np.float32)
        if out is not None:
            labels, confidence = write_results(labels, confidence, out, stages.within(5))
        else:
            labels, confidence = compute_with_progress((labels, confidence), stages.within(5))
    release_scratch()
    return labels, confidence, table


class _Store:
    """Intermediate volumes: in memory, or in a temporary zarr when the input is a dask
    volume whose labels go to disk (`out`), so nothing needs the whole volume in memory."""

    def __init__(self, folder: str, in_memory: bool):
        self.folder = folder
        self.in_memory = in_memory

    def keep(self, array: da.Array, name: str, progress):
        if self.in_memory:
            return da.from_array(compute_with_progress(array, progress), chunks=array.chunks)
        path = os.path.join(self.folder, f"{name}.zarr")
        compute_with_progress(da.to_zarr(array, path, compute=False, overwrite=True), progress)
        return da.from_zarr(path)

    def keep_with_halo(self, name: str, progress, function, stack, halo: int, *args, **kwargs):
        """`keep` the result of `map_with_halo`; on disk, the blocks exchange their margins
        through face files, deleted once the result is stored."""
        if self.in_memory:
            return self.keep(map_with_halo(function, stack, halo, *args, **kwargs), name, progress)
        faces = os.path.join(self.folder, f"{name}-faces")
        kept = self.keep(map_with_halo(function, stack, halo, *args, scratch=faces, **kwargs), name, progress)
        shutil.rmtree(faces, ignore_errors=True)
        return kept

    def persister(self, name: str):
        return lambda array: self.keep(array, name, None)


def write_results(labels: da.Array, confidence: da.Array, out, progress):
    """Labels to `out`, confidence beside it (OME-Zarr, atomic), then opened lazily."""
    from .volumes import open_volume, save_volume

    out = os.fspath(out)
    confidence_path = _confidence_path(out)
    for path in (out, confidence_path):
        if os.path.exists(path):
            raise FileExistsError(f"{path} already exists; choose a new output folder (nothing is overwritten).")
    save_volume(labels, out, kind="labels", progress=progress)
    if confidence is None:
        return open_volume(out).levels[0], None
    save_volume(confidence, confidence_path, kind="em")
    return open_volume(out).levels[0], open_volume(confidence_path).levels[0]


def _confidence_path(out: str) -> str:
    stem = out.rstrip("/")
    for suffix in (".ome.zarr", ".zarr"):
        if stem.endswith(suffix):
            return stem[: -len(suffix)] + "-confidence" + suffix
    return stem + "-confidence.ome.zarr"
