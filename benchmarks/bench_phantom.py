"""How long the mini-brain phantom takes to make, from the test size to benchmark sizes.

    python benchmarks/bench_phantom.py                 # test and benchmark sizes
    python benchmarks/bench_phantom.py --largest 256   # add 256 x 1024 x 1024

Prints wall time, time per megavoxel and peak traced memory for each size, so runs on
different machines (or after a change) can be compared line by line.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

from napari_wbe.phantom import mini_brain

SIZES = [((48, 192, 192), 40), ((64, 256, 256), 80), ((128, 512, 512), 300)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--largest", type=int, default=0, help="also a z x 4z x 4z volume with this z")
    args = parser.parse_args()
    sizes = SIZES + ([((args.largest, 4 * args.largest, 4 * args.largest), 600)] if args.largest else [])
    print(f"{'shape':>18s}{'neurons':>9s}{'synapses':>10s}{'seconds':>9s}{'s / Mvoxel':>12s}{'peak GiB':>10s}")
    for shape, n in sizes:
        tracemalloc.start()
        t = time.perf_counter()
        mb = mini_brain(n_neurons=n, shape=shape, n_channels=18, seed=0)
        seconds = time.perf_counter() - t
        peak = tracemalloc.get_traced_memory()[1] / 2**30
        tracemalloc.stop()
        mvox = mb.labels.size / 1e6
        print(f"{'x'.join(map(str, shape)):>18s}{n:9d}{len(mb.synapses):10d}{seconds:9.1f}"
              f"{seconds / mvox:12.3f}{peak:10.2f}")


if __name__ == "__main__":
    main()
