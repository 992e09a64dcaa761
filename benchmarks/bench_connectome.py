"""Connectome benchmarks (targets from issue 5):

(a) 1,000,000 synapses on a 512^3 uint32 label volume (~10,000 labels) to an edge table
    (target <= 2 s), with and without the neuron size/centroid pass, numpy and dask;
(b) a synthetic FlyWire-sized connectome, 139,000 neurons and 15,000,000 edges with
    root-id-sized ids: build time, memory (RSS delta), partners query latency (median
    of many random neurons, out and in; target <= 50 ms and <= 1.5 GB), parquet write
    and load time.

    python benchmarks/bench_connectome.py              # both
    python benchmarks/bench_connectome.py --only a     # or b; --side 256 for a smaller (a)
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
import warnings

import dask.array as da
import numpy as np
import pandas as pd
import psutil

from napari_wbe import connectome
from napari_wbe.connectome_tables import as_text

FLYWIRE_ID_BASE = 720575940_000_000_000  # FlyWire root ids are about 7.2e17
NT_NAMES = np.array(["ACh", "GABA", "Glu", "DA", "5-HT", "OA"], dtype=object)


def rss_gb() -> float:
    return psutil.Process().memory_info().rss / 2**30


def block_labels(side: int, cells_per_axis: int, seed: int = 0) -> np.ndarray:
    """uint32 labels: a grid of cubes with random ids, about 5% left as background."""
    rng = np.random.default_rng(seed)
    ids = rng.permutation(cells_per_axis**3).astype(np.uint32) + 1
    ids[rng.random(len(ids)) < 0.05] = 0
    ids = ids.reshape((cells_per_axis,) * 3)
    cell = (np.arange(side) * cells_per_axis) // side
    labels = np.empty((side,) * 3, np.uint32)
    for z in range(side):  # slab by slab: no 134M-element int64 temporaries
        labels[z] = ids[cell[z]][np.ix_(cell, cell)]
    return labels


def random_synapses(side: int, n: int, seed: int = 1) -> pd.DataFrame:
    """Pre ends anywhere, post ends a few voxels away (often in a neighbouring cube)."""
    rng = np.random.default_rng(seed)
    pre = rng.integers(0, side, (n, 3))
    post = np.clip(pre + rng.integers(-24, 25, (n, 3)), 0, side - 1)
    table = pd.DataFrame(np.hstack([pre, post]), columns=connectome.SYNAPSE_COLUMNS)
    table["nt"] = NT_NAMES[rng.choice(len(NT_NAMES), n, p=[0.5, 0.2, 0.18, 0.04, 0.04, 0.04])]
    table["confidence"] = rng.uniform(0.5, 1.0, n)
    return table


def bench_segmentation(side: int, n_synapses: int) -> None:
    cells = max(2, round((10_000) ** (1 / 3) * side / 512))
    t = time.perf_counter()
    labels = block_labels(side, cells)
    synapses = random_synapses(side, n_synapses)
    print(f"(a) {side}^3 uint32 labels, {len(np.unique(labels[::4, ::4, ::4])) - 1:,} labels, "
          f"{n_synapses:,} synapses (made in {time.perf_counter() - t:.1f} s)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", connectome.ConnectomeWarning)  # autapses are expected here
        warm = synapses[:10].copy()
        warm[connectome.SYNAPSE_COLUMNS] = warm[connectome.SYNAPSE_COLUMNS].clip(upper=31)
        connectome.from_segmentation(labels[:32, :32, :32], warm)  # compiles the numba kernel once
        for name, data, stats in (("numpy, edges + neuron table without size/centroid", labels, False),
                                  ("numpy, everything (size/centroid pass included)", labels, True),
                                  ("dask 128^3 chunks, everything", da.from_array(labels, chunks=128), True)):
            t = time.perf_counter()
            cx = connectome.from_segmentation(data, synapses, neuron_stats=stats)
            seconds = time.perf_counter() - t
            print(f"    {name}: {seconds:.2f} s  -> {len(cx.edges):,} edges, {len(cx.neurons):,} neurons, "
                  f"{cx.report['counted']:,} synapses counted, {cx.report['autapses']:,} autapses, "
                  f"{cx.report['background_pre'] + cx.report['background_post']:,} background ends")
    del labels, synapses, cx
    gc.collect()


def synthetic_edges(n_neurons: int, n_edges: int, seed: int = 2) -> tuple[np.ndarray, pd.DataFrame]:
    """Heavy-tailed out/in degrees, unique (pre, post) pairs, FlyWire-sized int64 ids."""
    rng = np.random.default_rng(seed)
    ids = np.sort(FLYWIRE_ID_BASE + rng.choice(10**12, n_neurons, replace=False)).astype(np.int64)
    cumulative = np.cumsum(rng.lognormal(0, 1.0, n_neurons))
    cumulative /= cumulative[-1]
    keys = np.zeros(0, np.int64)
    while len(keys) < n_edges:  # draw, drop repeated pairs, draw the shortfall again
        want = int((n_edges - len(keys)) * 1.05) + 1000
        pre = np.minimum(np.searchsorted(cumulative, rng.random(want)), n_neurons - 1)
        post = np.minimum(np.searchsorted(cumulative, rng.random(want)), n_neurons - 1)
        keys = np.sort(np.concatenate([keys, (pre * n_neurons + post)[pre != post]]))
        keys = keys[np.r_[True, keys[1:] != keys[:-1]]]  # sort + compare: faster than np.unique here
    keys = rng.permutation(keys)[:n_edges]
    keys.sort()
    pre, post = keys // n_neurons, keys % n_neurons
    del keys
    nt_of_neuron = NT_NAMES[rng.choice(len(NT_NAMES), n_neurons, p=[0.5, 0.2, 0.18, 0.04, 0.04, 0.04])]
    edges = pd.DataFrame({"pre": ids[pre], "post": ids[post],
                          "syn_count": (1 + rng.geometric(0.3, n_edges)).astype(np.int64)})
    edges["nt"] = as_text(nt_of_neuron[pre])
    edges["sign"] = np.array([connectome.NT_SIGN[n] for n in NT_NAMES], np.int8)[
        pd.Index(NT_NAMES).get_indexer(nt_of_neuron)][pre]
    edges["kind"] = as_text(np.full(n_edges, "chemical", dtype=object))
    neurons = pd.DataFrame({"type": [f"type{i % 8000}" for i in range(n_neurons)],
                            "nt": as_text(nt_of_neuron)},
                           index=pd.Index(ids, name="neuron_id"))
    return ids, neurons, edges


def bench_large(n_neurons: int, n_edges: int, queries: int) -> None:
    print(f"(b) synthetic connectome: {n_neurons:,} neurons, {n_edges:,} edges, ids ~ 7.2e17")
    gc.collect()
    baseline = rss_gb()
    t = time.perf_counter()
    ids, neurons, edges = synthetic_edges(n_neurons, n_edges)
    print(f"    tables generated in {time.perf_counter() - t:.1f} s")
    gc.collect()
    before = rss_gb()
    t = time.perf_counter()
    cx = connectome.Connectome(neurons=neurons, edges=edges)
    cx.index()  # the CSR index a first query would build
    built = time.perf_counter() - t
    gc.collect()
    tables = (cx.neurons.memory_usage(deep=True).sum() + cx.edges.memory_usage(deep=True).sum()) / 2**30
    index = cx.index()
    arrays = [index.ids, index.kind_codes] + [a for r in index.runs.values() for a in (r.order, r.starts, r.keys)
                                              if a is not None]
    print(f"    build (tables checked + CSR index): {built:.2f} s")
    print(f"    memory: tables {tables:.2f} GB + index {sum(a.nbytes for a in arrays) / 2**30:.2f} GB; RSS "
          f"delta {rss_gb() - baseline:+.2f} GB over the process before the tables were made "
          f"(of which building added {rss_gb() - before:+.2f} GB)")
    rng = np.random.default_rng(3)
    picks = rng.choice(ids, queries)
    for direction in ("out", "in"):
        times = []
        for neuron in picks:
            t = time.perf_counter()
            cx.partners(int(neuron), direction=direction, min_syn=5)
            times.append(time.perf_counter() - t)
        times = np.array(times) * 1000
        print(f"    partners({direction!r}, min_syn=5): median {np.median(times):.2f} ms, "
              f"95th pct {np.percentile(times, 95):.2f} ms, max {times.max():.1f} ms over {queries} neurons")
    t = time.perf_counter()
    hops = cx.downstream([int(picks[0])], hops=2, min_syn=5)
    print(f"    downstream 2 hops (min_syn=5): {len(hops):,} neurons in {time.perf_counter() - t:.2f} s")
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        folder = os.path.join(tmp, "big.connectome")
        t = time.perf_counter()
        cx.write(folder)
        wrote = time.perf_counter() - t
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)) / 2**20
        del cx, neurons, edges
        gc.collect()
        before = rss_gb()
        t = time.perf_counter()
        again = connectome.read(folder)
        loaded = time.perf_counter() - t
        print(f"    parquet folder: write {wrote:.2f} s ({size:.0f} MiB), load {loaded:.2f} s "
              f"(RSS {rss_gb() - before:+.2f} GB)")
        t = time.perf_counter()
        again.partners(int(picks[0]))
        print(f"    first query after load (builds the index): {time.perf_counter() - t:.2f} s; "
              f"peak RSS of this run {psutil.Process().memory_info().rss / 2**30:.2f} GB now")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["a", "b"])
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--synapses", type=int, default=1_000_000)
    parser.add_argument("--neurons", type=int, default=139_000)
    parser.add_argument("--edges", type=int, default=15_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    if args.only in (None, "a"):
        bench_segmentation(args.side, args.synapses)
    if args.only in (None, "b"):
        bench_large(args.neurons, args.edges, args.queries)


if __name__ == "__main__":
    main()
