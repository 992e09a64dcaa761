"""Proofreading edits: latency of merge, split and undo on a 512^3 volume with >= 10,000
segments (targets: merge and undo <= 100 ms, split <= 500 ms), with the edit log on disk
(each edit fsync'ed) and without; then split quality on real FIB-SEM bodies.

    python benchmarks/bench_proofreading.py            # latency + real-data split quality
    python benchmarks/bench_proofreading.py --side 256 # a smaller volume
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from napari_wbe.proofreading import Editor

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def segments_volume(side: int, cells_per_axis: int, seed: int = 0):
    """Labels: random ids on a coarse grid, blown up to side^3 (segments touch on faces);
    an EM-like image: dark membranes where the labels change, plus noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.permutation(cells_per_axis**3).reshape((cells_per_axis,) * 3).astype(np.uint32) + 1
    labels = ndi.zoom(coarse, side / cells_per_axis, order=0)[:side, :side, :side]
    edges = np.zeros(labels.shape, bool)
    for axis in range(3):
        edges |= labels != np.roll(labels, 1, axis=axis)
    image = np.where(edges, 60, 180).astype(np.uint8) + rng.integers(0, 40, labels.shape, dtype=np.uint8)
    return labels, image


def touching_pair(labels, rng):
    z, y, x = (int(v) for v in rng.integers(1, labels.shape[0] - 1, 3))
    a = labels[z, y, x]
    for dx in range(1, labels.shape[2] - x):
        if labels[z, y, x + dx] != a:
            return int(a), int(labels[z, y, x + dx])
    return touching_pair(labels, rng)


def latency(side: int, cells: int, repeats: int) -> None:
    labels, image = segments_volume(side, cells)
    print(f"volume {side}^3, {cells**3} segments of about {side // cells}^3 voxels")
    for logged in (False, True):
        with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
            t = time.perf_counter()
            ed = Editor(labels, image=image, log_path=os.path.join(tmp, "edits.wbelog") if logged else None)
            start = time.perf_counter() - t
            rng = np.random.default_rng(1)
            merge, undo, split = [], [], []
            for _ in range(repeats):
                a, b = touching_pair(labels, rng)
                seed_a, seed_b = _centre(labels, ed, a), _centre(labels, ed, b)
                t = time.perf_counter(); ed.merge([a, b]); merge.append(time.perf_counter() - t)
                t = time.perf_counter(); ed.undo(); undo.append(time.perf_counter() - t)
                ed.merge([a, b])
                t = time.perf_counter(); ed.split(a, [seed_a], [seed_b]); split.append(time.perf_counter() - t)
            ed.close()
        ms = lambda v: f"{1000 * np.median(v):6.1f} / {1000 * np.max(v):6.1f}"
        print(f"log {'on ' if logged else 'off'}: open {start:5.2f} s; median / max ms: merge {ms(merge)}, "
              f"undo {ms(undo)}, split {ms(split)}")


def _centre(labels, ed, label):
    box = ed.boxes[label]
    inside = np.argwhere(labels[box[0]:box[3], box[1]:box[4], box[2]:box[5]] == label)
    return inside[len(inside) // 2] + np.asarray(box[:3])


def split_quality(n_pairs: int = 30, half: int = 48) -> None:
    """Two touching true bodies of the real medulla cube, merged inside a 96^3 box around
    their contact (where a proofreader would split them), split again by the Editor with
    one seed each (the deepest voxel of each body in the box); IoU of the parts with truth."""
    import gzip
    import shutil

    from napari_wbe.volumes import open_volume

    medulla = SHARED / "fibsem_medulla"
    if not medulla.exists():
        print(f"\nsplit quality: skipped ({medulla} not found)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        with gzip.open(medulla / "groundtruth.h5.gz") as src, open(os.path.join(tmp, "gt.h5"), "wb") as dst:
            shutil.copyfileobj(src, dst)
        truth = np.asarray(open_volume(os.path.join(tmp, "gt.h5")).levels[0])
    em = np.asarray(open_volume(medulla / "grayscale_maps", voxel_size=10).levels[0])
    pairs = _big_touching_pairs(truth, min_size=20_000, min_contact=200)
    rng = np.random.default_rng(0)
    chosen = [pairs[i] for i in rng.choice(len(pairs), min(n_pairs, len(pairs)), replace=False)]
    print(f"\nsplit quality: {len(chosen)} pairs of touching real bodies (>= 20,000 voxels each), merged in a "
          f"{2 * half}^3 box around their contact, one seed per body")
    for name, use_image in (("membrane map of the EM", True), ("distance transform only", False)):
        ious, seconds = [], []
        for a, b in chosen:
            box = _box_around_contact(truth, a, b, half)
            crop = truth[box]
            labels = np.where(crop == b, a, crop)
            ed = Editor(labels, image=em[box] if use_image else None)
            seeds = [np.unravel_index(ndi.distance_transform_edt(crop == i).argmax(), crop.shape) for i in (a, b)]
            t = time.perf_counter()
            kept, new = ed.split(a, [seeds[0]], [seeds[1]])
            seconds.append(time.perf_counter() - t)
            ious.append(np.mean([((labels == p) & (crop == q)).sum() / ((labels == p) | (crop == q)).sum()
                                 for p, q in ((kept, a), (new, b))]))
        print(f"{name:24s} IoU median {np.median(ious):.2f}, mean {np.mean(ious):.2f}, lower quartile "
              f"{np.percentile(ious, 25):.2f}; split median {1000 * np.median(seconds):.0f} ms")


def _box_around_contact(truth, a, b, half):
    contact = np.zeros(truth.shape, bool)
    for axis in range(3):
        contact |= (truth == a) & (np.roll(truth, 1, axis=axis) == b)
    centre = np.argwhere(contact)[contact.sum() // 2]
    return tuple(slice(max(0, c - half), c + half) for c in centre)


def _big_touching_pairs(truth, min_size, min_contact):
    sizes = np.bincount(truth.ravel())
    counts = {}
    for axis in range(3):
        n = truth.shape[axis] - 1
        a, b = np.take(truth, range(n), axis=axis).ravel(), np.take(truth, range(1, n + 1), axis=axis).ravel()
        touch = (a != b) & (a > 0) & (b > 0)
        pairs, c = np.unique(np.sort(np.stack([a[touch], b[touch]]), axis=0), axis=1, return_counts=True)
        for (p, q), k in zip(pairs.T, c):
            counts[(int(p), int(q))] = counts.get((int(p), int(q)), 0) + int(k)
    return sorted(pair for pair, k in counts.items()
                  if k >= min_contact and sizes[pair[0]] >= min_size and sizes[pair[1]] >= min_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--cells", type=int, default=22, help="segments per axis (22^3 = 10,648)")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    latency(args.side, args.cells, args.repeats)
    split_quality()


if __name__ == "__main__":
    main()
