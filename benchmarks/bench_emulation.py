"""Emulation speed on FlyWire-sized synthetic networks: build time, compile time, and wall
time per simulated second at 1k, 10k and 139k neurons (float32 and float64), and many trials.

    python benchmarks/bench_emulation.py [--sizes 1000 10000 139000] [--trials 30]

The network: every neuron has 100 random targets, log-normal synapse counts, 70% of neurons
excitatory, 20 neurons stimulated at 150 Hz (the regime of Shiu et al. 2024).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from napari_wbe.connectome import Connectome
from napari_wbe.connectome_tables import TEXT
from napari_wbe.emulation import build_network, simulate


def flywire_like(n_neurons=139_000, targets=100, excitatory=0.7, seed=0) -> Connectome:
    rng = np.random.default_rng(seed)
    pre = np.repeat(np.arange(n_neurons, dtype=np.int64), targets)
    # random targets without self-loops: an offset in 1..n-1 from the presynaptic neuron
    post = (pre + rng.integers(1, n_neurons, len(pre))) % n_neurons
    syn = np.maximum(1, np.round(rng.lognormal(0.7, 0.9, len(pre)))).astype(np.int64)
    sign = np.where(rng.random(n_neurons) < excitatory, 1, -1).astype(np.int8)[pre]
    ids = 720575940600000000 + np.arange(n_neurons, dtype=np.int64) * 13  # FlyWire-like root ids
    edges = pd.DataFrame({"pre": ids[pre], "post": ids[post], "syn_count": syn,
                          "nt": pd.Series(pd.Categorical.from_codes(np.zeros(len(pre), int), ["ACh"]))
                          .astype(TEXT), "sign": sign,
                          "kind": pd.Series(pd.Categorical.from_codes(np.zeros(len(pre), int), ["chemical"]))
                          .astype(TEXT)})
    return Connectome(neurons=pd.DataFrame(index=pd.Index(ids, name="neuron_id")), edges=edges)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 139_000])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--trials", type=int, default=30, help="trials of 1 s at the largest size (0: skip)")
    args = parser.parse_args()

    tiny = flywire_like(200, 10)
    _, compile_s = timed(lambda: [simulate(tiny, stimulus=[int(tiny.neurons.index[0])], duration_ms=1,
                                           precision=p) for p in ("float32", "float64")])
    print(f"first call (compile or load cache, both precisions): {compile_s:.2f} s")
    for n in args.sizes:
        cx, gen_s = timed(lambda: flywire_like(n))
        net, build_s = timed(lambda: build_network(cx))
        stim = {int(i): 150.0 for i in cx.neurons.index[np.random.default_rng(1).choice(n, 20, replace=False)]}
        print(f"n={n:,}: {len(cx.edges):,} edges, generated in {gen_s:.1f} s, network built in {build_s:.2f} s")
        for precision in ("float32", "float64"):
            result, wall = timed(lambda: simulate(cx, stimulus=stim, duration_ms=1000 * args.seconds,
                                                  precision=precision, network=net))
            active = result.spikes["neuron"].nunique()
            print(f"  {precision}: {wall / args.seconds:.3f} s per simulated second "
                  f"({len(result.spikes):,} spikes, {active:,} neurons active)")
    if args.trials:
        result, wall = timed(lambda: simulate(cx, stimulus=stim, duration_ms=1000, trials=args.trials,
                                              network=net))
        print(f"n={n:,}: {args.trials} trials x 1 s (float32, all cores): {wall:.2f} s "
              f"({len(result.spikes):,} spikes)")


if __name__ == "__main__":
    main()
