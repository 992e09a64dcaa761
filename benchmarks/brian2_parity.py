"""Spike-for-spike parity of the float64 engine with Brian2 on the same network and kicks.

    python benchmarks/brian2_parity.py [--brian2-python PATH] [--n 1000] [--seeds 0 1 2]

brian2 2.9 does not import with numpy >= 2.4, so it runs in its own interpreter (a venv with
numpy < 2.4 and brian2; default $WBE_BRIAN2_PYTHON): brian2_side.py hands it the network and
the input kicks and the model `to_brian2` builds, and this script compares the spikes
(neuron, step) it sends back. Brian2 is not a project dependency.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from brian2_side import run_brian2


def compare(n, seed, brian2_python, target, duration_ms=1000.0):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from napari_wbe.emulation import build_network, simulate
    from napari_wbe.emulation.brian2_export import brian2_arrays
    from tests.emulation_helpers import poisson_events, random_connectome

    cx = random_connectome(n=n, seed=seed, log_mean=2.0)
    net = build_network(cx)
    ids = cx.neurons.index.to_numpy()
    events = poisson_events(ids[: n // 5], 150, duration_ms, seed=seed)
    start = time.perf_counter()
    ours = simulate(cx, input_events=events, duration_ms=duration_ms, precision="float64", network=net)
    our_wall = time.perf_counter() - start
    # the Brian2 model to_brian2 builds, from the same network object and the same kicks
    out = run_brian2(brian2_python, brian2_arrays(cx, input_events=events, duration_ms=duration_ms,
                                                  network=net), target=target)
    theirs = set(zip(out["step"].tolist(), out["i"].tolist()))
    mine = set(zip(np.round(ours.spikes["t_ms"].to_numpy() / ours.params.dt).astype(int).tolist(),
                   net.index_of(ours.spikes["neuron"].to_numpy()).tolist()))
    both = len(mine & theirs)
    print(f"n={n} seed={seed}: ours {len(mine)} spikes, Brian2 {len(theirs)}, identical {both}, "
          f"only ours {len(mine - theirs)}, only Brian2 {len(theirs - mine)}; "
          f"wall ours {our_wall:.2f} s, Brian2 ({target}) {float(out['run_wall_s']):.2f} s")
    return mine == theirs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--brian2-python", default=os.environ.get("WBE_BRIAN2_PYTHON"))
    parser.add_argument("--target", default="numpy", help="Brian2 codegen target: numpy or cython")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    if not args.brian2_python:
        parser.error("give --brian2-python or set WBE_BRIAN2_PYTHON (a Python with brian2 and numpy < 2.4)")
    ok = all([compare(args.n, seed, args.brian2_python, args.target) for seed in args.seeds])
    print("PARITY: every spike identical" if ok else "PARITY FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
