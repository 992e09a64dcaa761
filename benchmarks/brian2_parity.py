"""Spike-for-spike parity of the float64 engine with Brian2 on the same network and kicks.

    python benchmarks/brian2_parity.py --brian2-python /tmp/b2env/bin/python [--n 1000] [--seeds 0 1 2]

brian2 2.9 does not import with numpy >= 2.4, so it runs in its own interpreter (a venv with
numpy < 2.4 and brian2); this script hands it the network and the input kicks in an .npz
file and compares the spikes (neuron, step) it sends back. Brian2 is not a project dependency.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DT_MS = 0.1


def run_brian2(path):
    """Inside the brian2 interpreter: the reference model of Shiu et al. 2024, explicit kicks."""
    import brian2 as b2

    data = np.load(path)
    n, dur = int(data["n"]), float(data["duration_ms"])
    b2.prefs.codegen.target = str(data["target"])
    b2.defaultclock.dt = DT_MS * b2.ms
    eqs = """dv/dt = (v_0 - v + g) / t_mbr : volt (unless refractory)
             dg/dt = -g / tau : volt (unless refractory)
             rfc : second"""
    ns = dict(v_0=-52 * b2.mV, v_rst=-52 * b2.mV, v_th=-45 * b2.mV, t_mbr=20 * b2.ms, tau=5 * b2.ms,
              kick=0.275 * 250 * b2.mV)
    neu = b2.NeuronGroup(n, eqs, threshold="v > v_th", reset="v = v_rst; g = 0 * mV",
                         refractory="rfc", method="linear", namespace=ns)
    neu.v = ns["v_0"]
    neu.g = 0 * b2.mV
    neu.rfc = 2.2 * b2.ms
    stimulated = np.unique(data["kick_neuron"])
    neu.rfc[stimulated] = 0 * b2.ms
    syn = b2.Synapses(neu, neu, "w : volt", on_pre="g_post += w * int(not_refractory_post)",
                      delay=1.8 * b2.ms)
    syn.connect(i=data["pre"], j=data["post"])
    syn.w = data["w_mv"] * b2.mV
    gen = b2.SpikeGeneratorGroup(n, data["kick_neuron"], data["kick_step"] * DT_MS * b2.ms)
    kicks = b2.Synapses(gen, neu, on_pre="v_post += kick", namespace=ns)
    kicks.connect(j="i")
    mon = b2.SpikeMonitor(neu)
    start = time.perf_counter()
    b2.run(dur * b2.ms)
    wall = time.perf_counter() - start
    np.savez(path.replace(".npz", "_out.npz"), i=np.asarray(mon.i), step=np.round(np.asarray(mon.t / b2.ms) / DT_MS),
             wall=wall)


def compare(n, seed, brian2_python, target, duration_ms=1000.0):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from napari_wbe.emulation import build_network, simulate
    from tests.emulation_helpers import poisson_events, random_connectome

    cx = random_connectome(n=n, seed=seed, log_mean=2.0)
    net = build_network(cx)
    ids = cx.neurons.index.to_numpy()
    events = poisson_events(ids[: n // 5], 150, duration_ms, seed=seed)
    start = time.perf_counter()
    ours = simulate(cx, input_events=events, duration_ms=duration_ms, precision="float64")
    our_wall = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/net.npz"
        np.savez(path, n=n, duration_ms=duration_ms, target=target,
                 pre=net.index_of(cx.edges["pre"].to_numpy()), post=net.index_of(cx.edges["post"].to_numpy()),
                 w_mv=(cx.edges["syn_count"] * cx.edges["sign"]).to_numpy() * 0.275,
                 kick_neuron=net.index_of(events["neuron"].to_numpy()),
                 kick_step=np.round(events["t_ms"].to_numpy() / DT_MS).astype(np.int64))
        subprocess.run([brian2_python, __file__, "--run-brian2", path], check=True)
        out = np.load(path.replace(".npz", "_out.npz"))
        theirs = set(zip(out["step"].astype(int).tolist(), out["i"].astype(int).tolist()))
        b2_wall = float(out["wall"])
    mine = set(zip(np.round(ours.spikes["t_ms"].to_numpy() / DT_MS).astype(int).tolist(),
                   net.index_of(ours.spikes["neuron"].to_numpy()).tolist()))
    both = len(mine & theirs)
    print(f"n={n} seed={seed}: ours {len(mine)} spikes, Brian2 {len(theirs)}, identical {both}, "
          f"only ours {len(mine - theirs)}, only Brian2 {len(theirs - mine)}; "
          f"wall ours {our_wall:.2f} s, Brian2 ({target}) {b2_wall:.2f} s")
    return mine == theirs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-brian2", help=argparse.SUPPRESS)
    parser.add_argument("--brian2-python", default="/tmp/b2env/bin/python")
    parser.add_argument("--target", default="numpy", help="Brian2 codegen target: numpy or cython")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    if args.run_brian2:
        return run_brian2(args.run_brian2)
    ok = all([compare(args.n, seed, args.brian2_python, args.target) for seed in args.seeds])
    print("PARITY: every spike identical" if ok else "PARITY FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
