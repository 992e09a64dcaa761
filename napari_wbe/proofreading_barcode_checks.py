"""Barcode consistency of a segmentation: which code each segment carries, and which
segments carry two.

In barcoded tissue every cell expresses one random combination of tags, so
- a segment whose voxels decode to two different codes, each in force, holds two cells
  (a false merge: "split?");
- two touching segments with the same code are probably one cell cut in two (a false
  split: "merge?"), and touching segments with different codes are almost surely two.
Codes are read with the barcode decoder's own steps (levels, codebook learned when not
given, code profiles; `napari_wbe.barcodes.Decoder`). Only interior voxels vote (all six
neighbours in the same segment): border voxels mix the tags of the cells on both sides.
A segment's own code comes from the mean of all its voxels' tag vectors, where noise and
dropout have averaged out.
Dask volumes are read block by block, each with the halo its smoothing needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import pandas as pd

from .barcode_decoding import foreground, nearest_code, prepare, unit_vectors
from .chunked_labels import block_bounds
from .proofreading_metrics import compact_ids


@dataclass
class BarcodeEvidence:
    """segments: index label; code (1-based index into codebook, 0 = none decoded),
    code_name, similarity (cosine of the segment's mean tag vector to that code).
    votes: one row per (label, code) with the number of confident interior voxels, and
    one of those voxels (z, y, x)."""

    segments: pd.DataFrame
    votes: pd.DataFrame
    codebook: object


def barcode_evidence(labels, barcode_image, codebook=None, channel_axis: int = 0,
                     segment_similarity: float = 0.7, progress=None) -> BarcodeEvidence:
    """Codes per segment and interior-voxel code votes (see the module docstring)."""
    from .barcodes import Decoder  # the decoder pulls in zarr writers etc.; only needed here

    if barcode_image.ndim != 4:
        raise ValueError(f"barcode_image must be 4-D (channels, z, y, x); got shape {tuple(barcode_image.shape)}.")
    stack = da.moveaxis(da.asarray(barcode_image), channel_axis, 0) if isinstance(barcode_image, da.Array) \
        else np.moveaxis(np.asarray(barcode_image), channel_axis, 0)
    if tuple(stack.shape[1:]) != tuple(labels.shape):
        raise ValueError(f"barcode_image is {tuple(stack.shape[1:])} (z, y, x) but labels are {tuple(labels.shape)}; "
                         "decode on the same grid as the segmentation.")
    decoder = Decoder(stack, channel_axis=0, codebook=codebook)
    settings = decoder.settings
    halo = settings.smoothing_radius()
    blocks = list(_windows(labels, halo))
    if isinstance(labels, da.Array) or isinstance(stack, da.Array):
        tasks = [dask.delayed(_block)(labels[lab], stack[(slice(None),) + img], pad, crop, origin, settings)
                 for lab, img, pad, crop, origin in blocks]
        results = list(dask.compute(*tasks))
    else:
        lab, img, pad, crop, origin = blocks[0]
        results = [_block(np.asarray(labels)[lab], stack[(slice(None),) + img], pad, crop, origin, settings)]
    if progress:
        progress(1, 1)
    return _combine(results, settings, decoder.codebook, segment_similarity)


def _windows(labels, halo: int):
    """Per block: label slices (1 voxel of halo), image slices (`halo`), the edge padding
    the label window needs where it meets the volume's edge, and the block's crop/origin."""
    shape = labels.shape
    for lo, hi in block_bounds(labels):
        lab = tuple(slice(max(a - 1, 0), min(b + 1, n)) for a, b, n in zip(lo, hi, shape))
        pad = tuple((1 - (a - s.start), 1 - (s.stop - b)) for a, b, s in zip(lo, hi, lab))
        img = tuple(slice(max(a - halo, 0), min(b + halo, n)) for a, b, n in zip(lo, hi, shape))
        crop = tuple(slice(a - s.start, b - s.start) for a, b, s in zip(lo, hi, img))
        yield lab, img, pad, crop, tuple(lo)


def _block(labels, stack, pad, crop, origin, settings):
    # Padding by repetition at the volume's edge: the outside does not make a voxel a border voxel.
    window = np.pad(np.asarray(labels), pad, mode="edge")
    own = window[1:-1, 1:-1, 1:-1]
    interior = own != 0
    for axis in range(3):
        for step in (0, 2):
            index = tuple(slice(step, step + own.shape[d]) if d == axis else slice(1, -1) for d in range(3))
            interior &= window[index] == own
    x = prepare(np.asarray(stack), settings)[(slice(None),) + crop]
    ids, index = compact_ids(own.ravel())
    flat = x.reshape(x.shape[0], -1)
    sums = np.stack([np.bincount(index, weights=row, minlength=len(ids)) for row in flat], axis=1)
    sizes = np.bincount(index, minlength=len(ids))
    u, _ = unit_vectors(x)
    voting = np.flatnonzero(interior.ravel() & foreground(x, settings.foreground_threshold).ravel())
    code, similarity = nearest_code(u.reshape(u.shape[0], -1)[:, voting], settings.centroids)
    confident = similarity >= settings.min_similarity
    voting, code = voting[confident], code[confident].astype(np.int64) + 1
    pair = index[voting] * (len(settings.centroids) + 1) + code
    pairs, first, counts = np.unique(pair, return_index=True, return_counts=True)
    where = np.unravel_index(voting[first], own.shape)
    votes = pd.DataFrame({"label": ids[pairs // (len(settings.centroids) + 1)],
                          "code": pairs % (len(settings.centroids) + 1), "voxels": counts,
                          **{axis: w + o for axis, w, o in zip("zyx", where, origin)}})
    return ids, sums, sizes, votes


def _combine(results, settings, book, segment_similarity) -> BarcodeEvidence:
    ids = np.concatenate([r[0] for r in results])
    sums = pd.DataFrame(np.concatenate([r[1] for r in results]), index=ids).groupby(level=0).sum()
    sizes = pd.Series(np.concatenate([r[2] for r in results]), index=ids).groupby(level=0).sum()
    keep = sums.index != 0
    sums, sizes = sums[keep], sizes[keep]
    means = sums.to_numpy() / sizes.to_numpy()[:, None]
    u, _ = unit_vectors(means.T)
    code, similarity = nearest_code(u, settings.centroids) if len(means) else (np.zeros(0, int), np.zeros(0))
    code = np.where(similarity >= segment_similarity, code + 1, 0)
    names = np.array([""] + list(book.names), dtype=object)
    segments = pd.DataFrame({"code": code, "code_name": names[code], "similarity": similarity},
                            index=pd.Index(sums.index.to_numpy(np.int64), name="label"))
    votes = pd.concat([r[3] for r in results], ignore_index=True)
    # Keep the voxel from the block where the pair has most votes; add the counts up.
    votes = votes.sort_values("voxels", ascending=False, kind="stable")
    totals = votes.groupby(["label", "code"])["voxels"].sum()
    votes = votes.drop_duplicates(["label", "code"]).set_index(["label", "code"])
    votes["voxels"] = totals
    votes["code_name"] = names[votes.index.get_level_values("code")]
    return BarcodeEvidence(segments, votes.reset_index().sort_values(["label", "voxels"], ascending=[True, False]),
                           book)


def two_code_segments(evidence: BarcodeEvidence, min_voxels: int = 30, min_fraction: float = 0.1) -> pd.DataFrame:
    """Segments whose interior votes for a second code in force: at least `min_voxels`
    voxels and `min_fraction` of the two leading codes' votes. Columns: label, first,
    second (code names), n_first, n_second, fraction, z, y, x (a voxel voting second)."""
    votes = evidence.votes
    rank = votes.groupby("label").cumcount()
    first, second = votes[rank == 0].set_index("label"), votes[rank == 1].set_index("label")
    both = first.add_suffix("_1").join(second.add_suffix("_2"), how="inner")
    fraction = both["voxels_2"] / (both["voxels_1"] + both["voxels_2"])
    flagged = both[(both["voxels_2"] >= min_voxels) & (fraction >= min_fraction)]
    return pd.DataFrame({"label": flagged.index.to_numpy(np.int64), "first": flagged["code_name_1"].to_numpy(),
                         "second": flagged["code_name_2"].to_numpy(), "n_first": flagged["voxels_1"].to_numpy(),
                         "n_second": flagged["voxels_2"].to_numpy(), "fraction": fraction[flagged.index].to_numpy(),
                         "z": flagged["z_2"].to_numpy(), "y": flagged["y_2"].to_numpy(), "x": flagged["x_2"].to_numpy()})
