"""A sample of the faces between touching segments, each described by filter responses of
the EM around it, for learning what a membrane looks like in this very volume.

    faces = face_sample(fragments, em, contacts.pairs)   # once, next to contact_table
    faces.pair        # (n,) row of contacts.pairs each sampled face belongs to
    faces.features    # (n, f) float32

Why: the fixed membrane measure of proofreading_contacts (a Hessian eigenvalue) ranks
touching fragment pairs of the FlyEM medulla cube with ROC AUC 0.89. A classifier of
these face features, trained on the faces of pairs whose answer is known (faces between
two cells are membrane, faces inside one are not), reaches 0.95 on the other pairs,
whether half of the pairs are known or only the queue's first 400 answers. The
proofreading queue trains one from the proofreader's own answers (proofreading_queue).

At most `per_pair` faces are kept per touching pair, a random sample (on the medulla cube
64, 128 and 256 faces per pair rank pairs alike), so memory and the classifier's work are
bounded by the number of pairs, not by the contact areas. Filters are evaluated only at
the sampled faces' voxels (finite differences on the smoothed image), one gaussian filter
per scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter

from .proofreading_contacts import (
    block_faces,
    compute_in_batches,
    face_windows,
    intensity_levels,
    symmetric_eigenvalues,
)

SCALES = (1.0, 2.0, 4.0)  # voxels: membrane, membrane + its neighbourhood, organelle size
PER_SCALE = ("intensity", "gradient", "eigenvalue 1", "eigenvalue 2", "eigenvalue 3", "across the face")


@dataclass
class FaceSample:
    """pair: (n,) int64 row of the pairs table each face belongs to; features: (n, f)
    float32 filter responses (mean over the face's two voxels); names: the f columns;
    n_pairs: rows in the pairs table."""

    pair: np.ndarray
    features: np.ndarray
    names: list
    n_pairs: int


def face_sample(labels, image, pairs: pd.DataFrame, per_pair: int = 64, scales=SCALES,
                dark_membranes: bool = True, seed: int = 0, progress=None) -> FaceSample:
    """Sampled faces between the touching pairs in `pairs` (columns a < b, as
    `contact_table` gives them) of `labels` (numpy or dask), with filter features of
    `image` (EM on the same grid). Dask volumes are read block by block, in parallel, each
    with the margin its filters need, so a face's features equal a whole-volume run's;
    `progress(done, total)` hears after every few blocks."""
    if tuple(np.shape(image)) != tuple(labels.shape):
        raise ValueError(f"image has shape {tuple(np.shape(image))} but labels are {tuple(labels.shape)}; "
                         "they must share one grid.")
    index = _PairIndex(pairs["a"].to_numpy(np.int64), pairs["b"].to_numpy(np.int64))
    settings = {"levels": intensity_levels(image), "sign": 1.0 if dark_membranes else -1.0,
                "scales": tuple(float(s) for s in scales), "per_pair": int(per_pair)}
    halo = int(4.0 * max(settings["scales"]) + 0.5) + 2  # gaussian radius + the differences' reach
    windows = list(face_windows(labels, halo))
    seeds = np.random.SeedSequence(seed).spawn(len(windows) + 1)  # one per block: any order, same sample
    blocks = [(labels[lab], image[img], [b - a for a, b in zip(lo, hi)], crop, index, settings,
               np.random.default_rng(block_seed))
              for (lab, img, crop, (lo, hi)), block_seed in zip(windows, seeds)]
    if isinstance(labels, da.Array) or isinstance(image, da.Array):
        found = compute_in_batches([dask.delayed(_block_faces)(*block) for block in blocks], progress)
    else:  # numpy: one block, the whole volume
        found = [_block_faces(np.asarray(lab), np.asarray(img), *rest) for lab, img, *rest in blocks]
        if progress:
            progress(1, 1)
    rows, features = (np.concatenate(parts) for parts in zip(*found))
    keep = _at_most_per_group(rows, per_pair, np.random.default_rng(seeds[-1]))  # each block kept per_pair
    names = [f"{name} (scale {scale:g})" for scale in settings["scales"] for name in PER_SCALE]
    return FaceSample(rows[keep], features[keep], names, len(pairs))


class _PairIndex:
    """Row of the pairs table of any (a, b), whatever the ids' size: ids are numbered in
    order, and a pair's key is its two numbers in base len(ids)."""

    def __init__(self, a: np.ndarray, b: np.ndarray):
        self.ids = np.unique(np.concatenate([a, b]))
        keys = self._numbers(a)[0] * len(self.ids) + self._numbers(b)[0]
        self.order = np.argsort(keys)
        self.keys = keys[self.order]

    def _numbers(self, ids: np.ndarray):
        at = np.minimum(np.searchsorted(self.ids, ids), max(len(self.ids) - 1, 0))
        return at.astype(np.int64), (self.ids[at] == ids) if len(self.ids) else np.zeros(len(ids), bool)

    def rows(self, a: np.ndarray, b: np.ndarray):
        """(rows, found) of the pairs (min, max) of a and b."""
        (na, ka), (nb, kb) = self._numbers(a), self._numbers(b)
        key = np.minimum(na, nb) * len(self.ids) + np.maximum(na, nb)  # ids in order: min number, min id
        at = np.minimum(np.searchsorted(self.keys, key), max(len(self.keys) - 1, 0))
        found = ka & kb & (self.keys[at] == key) if len(self.keys) else np.zeros(len(key), bool)
        return self.order[at], found


def _block_faces(labels, image, own, crop, index: _PairIndex, settings, rng):
    """(pair rows, features) of at most per_pair random faces per pair whose lower voxel
    lies in this block's own region (`own` voxels from the window's start); `image` is the
    block's EM window, `crop` where the label window starts in it."""
    coords, axes, rows = [], [], []
    for a, b, where, axis in block_faces(labels, own):
        row, known = index.rows(a.astype(np.int64), b.astype(np.int64))  # background: not a pair
        coords.append(np.column_stack(where)[known])
        axes.append(np.full(known.sum(), axis, np.int8))
        rows.append(row[known])
    coords, axes, rows = np.concatenate(coords), np.concatenate(axes), np.concatenate(rows).astype(np.int64)
    chosen = _at_most_per_group(rows, settings["per_pair"], rng)
    coords, axes, rows = coords[chosen], axes[chosen], rows[chosen]
    low, high = settings["levels"]
    image = (image.astype(np.float32) - np.float32(low)) * np.float32(settings["sign"] / (high - low))
    lower = tuple(coords[:, d] + crop[d] for d in range(3))
    upper = tuple(w + (axes == d) for d, w in enumerate(lower))
    columns = []
    for scale in settings["scales"]:
        smooth = np.pad(gaussian_filter(image, scale, mode="nearest"), 1, mode="edge")
        columns += [0.5 * (x + y) for x, y in zip(_filters(smooth, lower, axes, scale),
                                                  _filters(smooth, upper, axes, scale))]
    return rows, np.column_stack(columns).astype(np.float32).reshape(len(rows), len(columns))


def _at_most_per_group(groups: np.ndarray, most: int, rng) -> np.ndarray:
    """Sorted indices of a random subset keeping at most `most` members of each group."""
    order = np.lexsort((rng.random(len(groups)), groups))  # by group, randomly within it
    in_order = groups[order]
    rank = np.arange(len(order)) - np.searchsorted(in_order, in_order, side="left")
    return np.sort(order[rank < most])


def _filters(smooth: np.ndarray, where, axis: np.ndarray, scale: float) -> list:
    """Filter responses at voxels `where` of the image padded by one voxel: intensity,
    gradient magnitude, Hessian eigenvalues (scale-normalised, largest first) and the
    second derivative along each face's own axis (a membrane in the face dips across it)."""
    strides = np.array(smooth.strides) // smooth.itemsize
    flat = smooth.ravel()
    at = sum((w + 1).astype(np.int64) * int(s) for w, s in zip(where, strides))
    centre = flat[at]
    steps = [int(s) for s in strides]
    first = [0.5 * (flat[at + s] - flat[at - s]) for s in steps]
    second = [flat[at + s] + flat[at - s] - 2 * centre for s in steps]

    def mixed(s1, s2):
        return 0.25 * (flat[at + s1 + s2] - flat[at + s1 - s2] - flat[at - s1 + s2] + flat[at - s1 - s2])

    norm = np.float32(scale * scale)
    eigen = symmetric_eigenvalues(*second, mixed(steps[0], steps[1]), mixed(steps[0], steps[2]),
                                  mixed(steps[1], steps[2]))
    across = np.choose(axis, second)
    gradient = np.sqrt(sum(g * g for g in first)) * np.float32(scale)
    return [centre, gradient, *(e * norm for e in eigen), across * norm]


def learn_membranes(faces: FaceSample, answered_rows, accepted, per_answer: int = 2000, seed: int = 0):
    """Train a membrane classifier on the sampled faces of answered pairs and apply it to
    every sampled face; returns (summed, counted) per row of the pairs table: the summed
    membrane probability of its sampled faces and their number.

    answered_rows: per answer, the rows of the pairs table its contact is made of;
    accepted: per answer, True if the two sides are one cell (their faces are not membrane).
    At most `per_answer` faces per answer, so a few huge contacts cannot outvote the rest."""
    from sklearn.ensemble import HistGradientBoostingClassifier  # only needed once answers arrive

    rng = np.random.default_rng(seed)
    order = np.argsort(faces.pair, kind="stable")
    bounds = np.searchsorted(faces.pair[order], np.arange(faces.n_pairs + 1))
    chosen, membrane = [], []
    for rows, accept in zip(answered_rows, accepted):
        picked = np.concatenate([order[bounds[r]:bounds[r + 1]] for r in rows] or [np.zeros(0, np.int64)])
        if len(picked) > per_answer:
            picked = rng.choice(picked, per_answer, replace=False)
        chosen.append(picked)
        membrane.append(np.full(len(picked), not accept))
    chosen, membrane = np.concatenate(chosen), np.concatenate(membrane)
    if len(np.unique(membrane)) < 2:  # one kind of answer with sampled faces: nothing to tell apart
        return None
    classifier = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    classifier.fit(faces.features[chosen], membrane)
    probability = classifier.predict_proba(faces.features)[:, 1]
    return (np.bincount(faces.pair, weights=probability, minlength=faces.n_pairs),
            np.bincount(faces.pair, minlength=faces.n_pairs).astype(np.float64))
