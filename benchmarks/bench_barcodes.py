"""Barcode decoding: acceptance figures on the phantom, then throughput and peak memory.

    python benchmarks/bench_barcodes.py                      # acceptance + 64x256x256 x 18
    python benchmarks/bench_barcodes.py --tile 2 4 4         # chunked run on a 128x1024x1024 x 18 zarr
    python benchmarks/bench_barcodes.py --skip-acceptance --tile 4 4 4   # 256x1024x1024 x 18

Acceptance (issue 3): 100 neurons, 18 tags, realistic noise and round shifts: fraction of
foreground voxels in the right neuron, adapted Rand error, learned codes recovered,
fragment-mode ARAND, and the seconds one slice preview takes (the widget's response to a
slider). Throughput is voxel-channels per second; the chunked run decodes a zarr volume
(the phantom tiled) to a zarr output, each run in a fresh process so its peak memory
(RSS) is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

RUN = r"""
import json, resource, sys, time
import dask.array as da, numpy as np
from napari_wbe import barcodes
mode, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
image = da.from_zarr(path)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if mode == "memory":
    res = barcodes.decode(np.asarray(image))
else:
    res = barcodes.decode(image, out=out)
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "labels": len(res.table), "codes": len(res.codebook)}))
"""


def voxels_right(labels, truth) -> float:
    fg = truth > 0
    pairs, counts = np.unique(np.stack([labels[fg], truth[fg]]), axis=1, return_counts=True)
    order = np.lexsort((-counts, pairs[0]))
    first = order[np.r_[True, pairs[0][order][1:] != pairs[0][order][:-1]]]
    majority = np.full(int(labels.max()) + 1, -1, np.int64)
    majority[pairs[0][first]] = pairs[1][first]
    majority[0] = -1
    return float((majority[labels] == truth)[fg].mean())


def acceptance() -> None:
    from skimage.metrics import adapted_rand_error

    from napari_wbe import barcodes
    from napari_wbe.phantom import mini_brain

    mb = mini_brain(n_neurons=100, shape=(48, 192, 192), n_channels=18, seed=1, tags_per_round=6, round_shift=3.0)
    rounds = {"reference": mb.reference_image, "round_of_channel": mb.round_of_channel}
    big = np.bincount(mb.labels.ravel(), minlength=101)[1:] >= 500
    print("acceptance: phantom 100 neurons, 48x192x192, 18 tags in 3 rounds shifted up to 3 voxels")
    print(f"{'run':34s}{'s':>6s}{'labels':>8s}{'voxels right':>14s}{'ARAND':>8s}{'codes found':>13s}")
    for name, kwargs in [("learned codebook (default: auto)", {}),
                         ("learned, one cell per piece", {"identity": "connected"}),
                         ("learned, one cell per code", {"identity": "code"}),
                         ("true codebook (auto)", {"codebook": mb.codebook}),
                         ("fragments (learned codebook)", {"fragments": mb.fragments})]:
        t = time.perf_counter()
        res = barcodes.decode(mb.barcode_image, **rounds, **kwargs)
        seconds = time.perf_counter() - t
        learned = {tuple(r) for r in res.codebook.codes}
        found = np.mean([tuple(mb.codebook[i]) in learned for i in np.flatnonzero(big)])
        print(f"{name:34s}{seconds:6.1f}{len(res.table):8d}{voxels_right(res.labels, mb.labels):14.4f}"
              f"{adapted_rand_error(mb.labels, res.labels)[0]:8.4f}{found:13.3f}")
    preview_latency(barcodes.Decoder(mb.barcode_image, **rounds))


def preview_latency(decoder) -> None:
    """What the widget waits for when a slider moves: one slice decoded at new values."""
    seconds = []
    for z, similarity in [(5, 0.7), (20, 0.75), (30, 0.9), (40, 0.6), (47, 0.85)]:
        t = time.perf_counter()
        decoder.with_options(min_similarity=similarity).preview(z)
        seconds.append(time.perf_counter() - t)
    print(f"slice preview (the widget's slider response; aim < 0.3 s): median {np.median(seconds):.3f} s, "
          f"slowest {max(seconds):.3f} s of {len(seconds)}")


def throughput(tile) -> None:
    import dask.array as da

    from napari_wbe.phantom import mini_brain

    mb = mini_brain(n_neurons=80, shape=(64, 256, 256), n_channels=18, seed=3)
    image = da.tile(da.from_array(mb.barcode_image, chunks=(18, 64, 128, 128)), (1, *tile))
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        path = os.path.join(tmp, "exm.zarr")
        da.to_zarr(image.rechunk((18, 64, 128, 128)), path)
        vc = image.size
        print(f"\nthroughput: {image.shape[1:]} voxels x 18 channels = {vc / 1e6:.0f} M voxel-channels, uint16")
        print(f"{'run':28s}{'s':>8s}{'M voxel-ch/s':>14s}{'peak RSS MiB':>14s}{'labels':>8s}")
        modes = ["memory", "chunked"] if np.prod(tile) == 1 else ["chunked"]
        for mode in modes:
            out = os.path.join(tmp, f"labels-{mode}.ome.zarr")
            proc = subprocess.run([sys.executable, "-c", RUN, mode, path, out], capture_output=True, text=True)
            if proc.returncode:
                raise RuntimeError(proc.stderr[-3000:])
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            label = "numpy in memory" if mode == "memory" else "dask zarr -> zarr, chunked"
            print(f"{label:28s}{r['seconds']:8.1f}{vc / r['seconds'] / 1e6:14.1f}{r['peak_mib']:14.0f}{r['labels']:8d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tile", type=int, nargs=3, default=(1, 1, 1), help="repeat the 64x256x256 phantom z y x times")
    parser.add_argument("--skip-acceptance", action="store_true")
    args = parser.parse_args()
    if not args.skip_acceptance:
        acceptance()
    throughput(tuple(args.tile))


if __name__ == "__main__":
    main()
