"""Time to first slice and peak memory: lazy open_volume vs a full np.asarray load.

    python benchmarks/bench_open_volume.py            # a 2 GiB OME-Zarr
    python benchmarks/bench_open_volume.py --gib 8    # bigger
    python benchmarks/bench_open_volume.py --napari   # also time the first draw in a viewer

The volume is written once into a temporary folder (chunk by chunk, never whole in memory);
each measurement then runs in a fresh Python process so its peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

MEASURE = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import numpy as np
from napari_wbe.volumes import open_volume
mode, path = sys.argv[1], sys.argv[2]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t_import = time.perf_counter()
vol = open_volume(path)
data = vol.levels[0]
if mode == "lazy":
    first = np.asarray(data[data.shape[0] // 2])
elif mode == "full":
    full = np.asarray(data)
    first = full[full.shape[0] // 2]
else:  # napari: open, add the layer, draw one frame
    import napari
    from napari_wbe.layer_data import volume_layer_data
    viewer = napari.Viewer(show=True)
    (d, kwargs, kind), = volume_layer_data(vol)
    viewer.add_image(d, **kwargs)
    first = viewer.screenshot(canvas_only=True, flash=False)
    viewer.close()
elapsed = time.perf_counter() - t_import
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "peak_mib": peak, "added_mib": peak - base / 1024,
                  "checksum": float(first.mean())}))
"""


def write_volume(path: str, gib: float) -> tuple[int, int, int]:
    import dask.array as da
    import numpy as np

    from napari_wbe.volumes import save_volume

    side = 1024
    depth = max(1, int(gib * 2**30 / side / side))
    # Smooth-ish EM-like content that compresses a little, as real EM does, generated per chunk.
    rng = da.random.default_rng(0)
    noise = rng.integers(0, 64, size=(depth, side, side), chunks=(64, 256, 256), dtype=np.uint8)
    z = (da.arange(depth, chunks=64) % 128).astype(np.uint8)[:, None, None]
    volume = noise + z
    save_volume(volume, path, voxel_size=(8, 8, 8), multiscale=True)
    return volume.shape


def measure(mode: str, path: str) -> dict:
    env = dict(os.environ)
    cmd = [sys.executable, "-c", MEASURE, mode, path]
    if mode == "napari" and not env.get("DISPLAY"):
        cmd = ["xvfb-run", "-a", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=2.0, help="volume size in GiB (default 2)")
    parser.add_argument("--napari", action="store_true", help="also time a first draw in a napari viewer")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        path = os.path.join(tmp, "big.ome.zarr")
        t = time.perf_counter()
        shape = write_volume(path, args.gib)
        print(f"volume: {shape} uint8 = {args.gib:.1f} GiB OME-Zarr, written in {time.perf_counter() - t:.1f} s")
        modes = ["lazy", "full"] + (["napari"] if args.napari else [])
        results = {mode: measure(mode, path) for mode in modes}
    lazy, full = results["lazy"], results["full"]
    labels = {"lazy": "open_volume, lazy", "full": "np.asarray, whole volume", "napari": "napari viewer, first draw"}
    print(f"{'':28s}{'first slice (s)':>16s}{'peak RSS (MiB)':>16s}{'added by load (MiB)':>21s}")
    for mode, result in results.items():
        print(f"{labels[mode]:28s}{result['seconds']:16.3f}{result['peak_mib']:16.0f}{result['added_mib']:21.0f}")
    print(f"lazy reaches the first slice {full['seconds'] / lazy['seconds']:.0f}x sooner, with a "
          f"{full['peak_mib'] / lazy['peak_mib']:.0f}x smaller peak RSS")


if __name__ == "__main__":
    main()
