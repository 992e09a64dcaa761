"""`simulate`: a Connectome, a stimulus and a duration in; spike table and rates out."""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import engine
from .network import Network, build_network
from .params import EmulationError, ModelParams
from .stimulus import _steps, explicit_events, poisson_segments

CHUNK_STEPS = 1000  # progress (and cancellation) granularity: 100 ms of model time


@dataclass
class SimulationResult:
    spikes: pd.DataFrame      # t_ms, trial, neuron (connectome id)
    neuron_ids: np.ndarray    # every neuron of the network, in index order
    duration_ms: float
    trials: int
    params: ModelParams
    v: pd.DataFrame | None = None  # traces: index (trial, t_ms), one column per recorded neuron id
    stimulated: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def rates(self) -> pd.DataFrame:
        """Mean and SD over trials of each neuron's rate (Hz); every neuron, silent ones at 0."""
        counts = np.zeros((self.trials, len(self.neuron_ids)))
        if len(self.spikes):
            idx = pd.Index(self.neuron_ids).get_indexer(self.spikes["neuron"].to_numpy())
            np.add.at(counts, (self.spikes["trial"].to_numpy(), idx), 1)
        hz = counts / (self.duration_ms / 1000.0)
        sd = hz.std(axis=0, ddof=1) if self.trials > 1 else np.zeros(len(self.neuron_ids))
        return pd.DataFrame({"neuron": self.neuron_ids, "mean_hz": hz.mean(axis=0), "sd_hz": sd})


def _trial_keys(seed, trials):
    # One independent 64-bit key per (seed, trial): a trial's spikes depend on nothing else.
    return [np.random.SeedSequence([int(seed), t]).generate_state(1, np.uint64)[0] for t in range(trials)]


def simulate(cx, stimulus=None, duration_ms=1000.0, trials=1, silence=(), params=None,
             input_events=None, seed=0, precision="float32", record_v=(), progress=None,
             network: Network | None = None, n_threads=None) -> SimulationResult:
    """Run the LIF model of DESIGN.md on a connectome.

    stimulus: {neuron_id: rate_hz} or {neuron_id: [(start_ms, stop_ms, rate_hz), ...]} or a
        list of ids (at params.rate_hz). input_events: DataFrame (t_ms, neuron[, trial]) of
        explicit kicks, instead of or besides rates. Stimulated neurons get t_rfc = 0.
    silence: ids whose outgoing weights are zeroed. record_v: ids whose v is kept (mV, at the
        start of every step). progress(done_chunks, total_chunks) is called on this thread.
    precision: "float32" (fast, default) or "float64" (Brian2's arithmetic, spike-exact).
    network: a prebuilt `build_network(cx, params)`, to skip rebuilding in sweeps.
    """
    params = params or ModelParams()
    params.validate()
    if precision not in ("float32", "float64"):
        raise EmulationError(f"precision must be 'float32' or 'float64', not {precision!r}.")
    if not (np.isfinite(duration_ms) and duration_ms > 0):
        raise EmulationError(f"duration_ms = {duration_ms}; it must be a positive number of ms.")
    if int(trials) != trials or trials < 1:
        raise EmulationError(f"trials = {trials}; it must be a whole number >= 1.")
    trials = int(trials)
    dtype = np.dtype(precision)
    net = network if network is not None else build_network(cx, params)
    values = params.per_neuron(net.neurons)
    n_steps = _steps(duration_ms, params.dt)
    segments = poisson_segments(net, stimulus, duration_ms, params)
    events, event_idx = explicit_events(net, input_events, trials, duration_ms, params.dt)
    weights = net.silenced_weights(net.index_of(list(silence), "silenced ids"))
    rec_idx = net.index_of(list(record_v), "record_v ids")

    stimulated = np.union1d(segments[0], event_idx).astype(np.int64)
    t_rfc = values["t_rfc"].copy()
    t_rfc[stimulated] = 0.0  # as in the reference model: a driven neuron may fire every step
    refr = np.round(t_rfc / params.dt).astype(np.int64)
    delay = params.delay_steps
    window = max(delay + 1, int(refr.max(initial=0)))
    a, b, c = engine.propagator(values["t_mbr"], values["tau"], params.dt)
    per_neuron = {"a": a, "b": b, "c": c, "v0": values["v_0"], "vth": values["v_th"]}
    cast = {k: x.astype(dtype) for k, x in per_neuron.items()}
    # heterogeneous neurons read their own constants; a single template is read once per step
    varies = net.n > 0 and not all(np.all(x == x[0]) for x in cast.values())
    constants = {k: (x if varies else x[:1]) for k, x in cast.items()}
    vrst = values["v_rst"].astype(dtype)
    kick = dtype.type(params.kick)
    floor = dtype.type(engine.flush_floor(dtype))
    w = weights.astype(dtype, copy=False)  # read only by the engine
    keys = _trial_keys(seed, trials)
    chunks = [(k0, min(k0 + CHUNK_STEPS, n_steps)) for k0 in range(0, n_steps, CHUNK_STEPS)]
    done = queue.Queue()
    stop = threading.Event()  # trials end at their next chunk once it is set

    def run_trial(trial):
        st = engine.TrialState(net.n, window, cast["v0"], cast["vth"], dtype, len(rec_idx), n_steps,
                               expected_spikes=4 * n_steps + 1024)
        ev_step, ev_neuron = events[trial]
        for k0, k1 in chunks:
            if stop.is_set():
                break
            st.out_step, st.out_neuron, st.n_out, st.n_active = engine.run_chunk(
                k0, k1, st.v, st.g, st.r_until, st.ring, st.ring_count, st.active, st.is_active,
                st.n_active, varies, constants["a"], constants["b"], constants["c"], constants["v0"],
                constants["vth"], vrst, refr,
                st.can_rest, floor,
                net.indptr, net.targets, w, delay,
                segments[0], segments[1], segments[2], segments[3], kick, keys[trial],
                ev_step, ev_neuron, st.ev_pos, rec_idx, st.trace, st.out_step, st.out_neuron, st.n_out)
            done.put(1)
        return st.out_step[:st.n_out].copy(), st.out_neuron[:st.n_out].copy(), st.trace

    n_threads = n_threads or min(trials, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        futures = [pool.submit(run_trial, t) for t in range(trials)]
        total = len(chunks) * trials
        try:
            for finished in range(1, total + 1):
                while True:
                    try:
                        done.get(timeout=0.5)
                        break
                    except queue.Empty:
                        failed = [f for f in futures if f.done() and f.exception() is not None]
                        if failed:
                            raise failed[0].exception()
                if progress is not None:
                    progress(finished, total)
        except BaseException:
            stop.set()  # a cancel (raised by progress) or a failed trial stops the others
            raise
        outputs = [f.result() for f in futures]
    return _result(net, outputs, trials, duration_ms, params, rec_idx, stimulated)


def _result(net, outputs, trials, duration_ms, params, rec_idx, stimulated):
    steps = np.concatenate([o[0] for o in outputs]) if outputs else np.zeros(0, np.int32)
    idx = np.concatenate([o[1] for o in outputs]) if outputs else np.zeros(0, np.int32)
    trial = np.concatenate([np.full(len(o[0]), t, np.int64) for t, o in enumerate(outputs)])
    spikes = pd.DataFrame({"t_ms": steps * params.dt, "trial": trial, "neuron": net.ids[idx]})
    v = None
    if len(rec_idx):
        n_steps = outputs[0][2].shape[1]
        index = pd.MultiIndex.from_product([range(trials), np.arange(n_steps) * params.dt],
                                           names=["trial", "t_ms"])
        stacked = np.concatenate([o[2].T for o in outputs])
        v = pd.DataFrame(stacked, index=index, columns=net.ids[rec_idx])
    return SimulationResult(spikes=spikes, neuron_ids=net.ids, duration_ms=duration_ms, trials=trials,
                            params=params, v=v, stimulated=net.ids[stimulated])


