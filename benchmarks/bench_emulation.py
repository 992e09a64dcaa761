"""Emulation speed on FlyWire-sized synthetic networks: build time, compile time, and wall
time per simulated second at 1k, 10k and 139k neurons (float32 and float64), many trials,
and Brian2 (Cython runtime) on the same network and stimulus, with the ratio.

    python benchmarks/bench_emulation.py [--sizes 1000 10000 139000] [--trials 30]
                                         [--brian2-python PATH] [--brian2-ms 500]

The network: every neuron has 100 random targets, log-normal synapse counts, 70% of neurons
excitatory, 20 neurons stimulated at 150 Hz (the regime of Shiu et al. 2024). Brian2 runs
the model `to_brian2` builds (Poisson input of at most one kick per step, as the reference's
PoissonInput(N=1)) in its own interpreter (--brian2-python, default $WBE_BRIAN2_PYTHON; it
needs numpy < 2.4): a warm-up run of a few ms first (code generation and the Cython compile,
cold at the first size: a fresh cache directory), then the timed run, counted by Brian2's
own clock of the stepping loop and scaled to one simulated second.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
from brian2_side import run_brian2

from napari_wbe.connectome import Connectome
from napari_wbe.connectome_tables import TEXT
from napari_wbe.emulation import build_network, simulate
from napari_wbe.emulation.brian2_export import brian2_arrays

ROOT = Path(__file__).resolve().parents[1]

# One first call in a fresh interpreter: the import, then simulate on a tiny network in both
# precisions (compiling, or loading from NUMBA_CACHE_DIR, every numba function it uses).
FIRST_CALL = textwrap.dedent("""
    import json, time
    start = time.perf_counter()
    from bench_emulation import flywire_like, simulate
    imported = time.perf_counter()
    tiny = flywire_like(200, 10)
    called = time.perf_counter()
    for precision in ("float32", "float64"):
        simulate(tiny, stimulus=[int(tiny.neurons.index[0])], duration_ms=1, precision=precision)
    print(json.dumps({"import_s": imported - start, "call_s": time.perf_counter() - called}))
""")


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


def first_calls():
    """(cold, warm): the first call with an empty numba cache, then again with that cache
    filled, each in a fresh interpreter (this one has compiled everything already)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache,
               "PYTHONPATH": os.pathsep.join([str(ROOT / "benchmarks"), str(ROOT)])}
        return [json.loads(subprocess.run([sys.executable, "-c", FIRST_CALL], env=env, cwd=ROOT, check=True,
                                          capture_output=True, text=True).stdout.splitlines()[-1])
                for _ in range(2)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 139_000])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--trials", type=int, default=30, help="trials of 1 s at the largest size (0: skip)")
    parser.add_argument("--brian2-python", default=os.environ.get("WBE_BRIAN2_PYTHON"),
                        help="a Python with brian2 and numpy < 2.4 (default $WBE_BRIAN2_PYTHON)")
    parser.add_argument("--brian2-ms", type=float, default=500.0, help="Brian2's timed run, ms of model time")
    parser.add_argument("--brian2-warmup-ms", type=float, default=10.0)
    args = parser.parse_args()

    cold, warm = first_calls()
    print(f"our first call, both precisions, empty numba cache (compile): {cold['call_s']:.2f} s; "
          f"with the cache filled (warm start): {warm['call_s']:.2f} s; import {warm['import_s']:.2f} s")
    b2_cache = tempfile.mkdtemp(prefix="wbe-brian2-cython-")  # fresh: the first compile is cold
    if args.brian2_python:
        tiny = flywire_like(200, 10)
        out = run_brian2(args.brian2_python, brian2_arrays(tiny, stimulus=list(tiny.neurons.index[:20]),
                                                           duration_ms=20), target="cython", run_ms=10,
                         warmup_ms=10, cache_dir=b2_cache)
        print(f"Brian2 first compile, empty Cython cache (objects and a first run, 200 neurons): "
              f"{float(out['build_s']) + float(out['first_s']):.1f} s")
    else:
        print("Brian2 not timed: give --brian2-python or set WBE_BRIAN2_PYTHON (a venv with "
              '"numpy<2.4" brian2==2.9.0 cython).')
    summary = []
    for n in args.sizes:
        cx, gen_s = timed(lambda: flywire_like(n))
        net, build_s = timed(lambda: build_network(cx))
        stim = {int(i): 150.0 for i in cx.neurons.index[np.random.default_rng(1).choice(n, 20, replace=False)]}
        print(f"n={n:,}: {len(cx.edges):,} edges, generated in {gen_s:.1f} s, network built in {build_s:.2f} s")
        ours = {}
        for precision in ("float32", "float64"):
            result, wall = timed(lambda: simulate(cx, stimulus=stim, duration_ms=1000 * args.seconds,
                                                  precision=precision, network=net))
            ours[precision] = wall / args.seconds
            active = result.spikes["neuron"].nunique()
            print(f"  {precision}: {wall / args.seconds:.3f} s per simulated second "
                  f"({len(result.spikes):,} spikes, {active:,} neurons active)")
        if args.brian2_python:
            summary.append((n, ours, brian2_cython(args, cx, net, stim, b2_cache)))
    if args.trials:
        result, wall = timed(lambda: simulate(cx, stimulus=stim, duration_ms=1000, trials=args.trials,
                                              network=net))
        print(f"n={n:,}: {args.trials} trials x 1 s (float32, all cores): {wall:.2f} s "
              f"({len(result.spikes):,} spikes)")
    shutil.rmtree(b2_cache, ignore_errors=True)
    if summary:
        print("\ns per simulated second  ours float32  ours float64  Brian2 Cython  Brian2/ours (f32, f64)"
              "  Brian2 setup (build + first run)")
        for n, ours, (b2_s, setup_s) in summary:
            print(f"n={n:>7,}  {ours['float32']:>17.3f} {ours['float64']:>13.3f} {b2_s:>14.2f} "
                  f"{b2_s / ours['float32']:>11.1f}x {b2_s / ours['float64']:>6.1f}x {setup_s:>19.1f} s")


def brian2_cython(args, cx, net, stim, cache_dir):
    """Brian2's seconds per simulated second on the same network and stimulus, Cython runtime."""
    arrays = brian2_arrays(cx, stimulus=stim, duration_ms=args.brian2_warmup_ms + args.brian2_ms, network=net)
    out = run_brian2(args.brian2_python, arrays, target="cython", run_ms=args.brian2_ms,
                     warmup_ms=args.brian2_warmup_ms, cache_dir=cache_dir)
    per_s = float(out["run_s"]) / (args.brian2_ms / 1000)
    rate = len(out["i"]) / ((args.brian2_warmup_ms + args.brian2_ms) / 1000)
    print(f"  Brian2 Cython: {per_s:.2f} s per simulated second (a {args.brian2_ms:g} ms run: stepping loop "
          f"{float(out['run_s']):.2f} s, with run setup {float(out['run_wall_s']):.2f} s); objects built in "
          f"{float(out['build_s']):.1f} s, first run ({args.brian2_warmup_ms:g} ms, Cython cache warm) "
          f"{float(out['first_s']):.1f} s; {rate:,.0f} spikes per simulated second")
    return per_s, float(out["build_s"]) + float(out["first_s"])


if __name__ == "__main__":
    main()
