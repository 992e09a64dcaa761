"""Stimuli as the engine wants them: Poisson segments and explicit kick events, by index.

A Poisson segment is (neuron index, first step, stop step, probability per step): the
reference model's PoissonInput with N=1 gives at most one kick per step, with probability
rate x dt. Explicit events are the same kicks at given times (e.g. to replay Brian2's).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .params import EmulationError


def _steps(ms, dt):
    # A small tolerance so that 100.0 ms / 0.1 ms is step 1000, not 999.
    return int(np.floor(ms / dt + 1e-6))


def poisson_segments(net, stimulus, duration_ms, params):
    """(neuron idx int32, start int64, stop int64, p float64) of every stimulus segment."""
    if stimulus is None:
        stimulus = {}
    if not isinstance(stimulus, dict):  # a list of ids: each at the default rate
        stimulus = {nid: params.rate_hz for nid in np.atleast_1d(np.asarray(stimulus)).tolist()}
    n_steps = _steps(duration_ms, params.dt)
    rows = []
    for nid, spec in stimulus.items():
        idx = int(net.index_of([nid], "stimulus ids")[0])
        if np.isscalar(spec):
            spec = [(0.0, duration_ms, spec)]
        for item in spec:
            if len(item) != 3:
                raise EmulationError(
                    f"Stimulus of neuron {nid}: {item!r} is not (start_ms, stop_ms, rate_hz).")
            start, stop, rate = (float(x) for x in item)
            if not (np.isfinite(rate) and rate >= 0):
                raise EmulationError(f"Stimulus rate of neuron {nid} is {rate} Hz; rates must be >= 0.")
            if not (0 <= start <= stop) or not np.isfinite(stop):
                raise EmulationError(
                    f"Stimulus of neuron {nid}: ({start}, {stop}) ms is not a time window; use "
                    "0 <= start_ms <= stop_ms.")
            p = rate * params.dt / 1000.0
            if p > 1:
                raise EmulationError(
                    f"Stimulus rate {rate} Hz of neuron {nid} exceeds one kick per step (1/dt = "
                    f"{1000 / params.dt:g} Hz); lower it or use a smaller dt.")
            rows.append((idx, _steps(start, params.dt), min(_steps(stop, params.dt), n_steps), p))
    if not rows:
        return (np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))
    idx, start, stop, p = zip(*rows)
    return (np.array(idx, np.int32), np.array(start, np.int64), np.array(stop, np.int64),
            np.array(p, np.float64))


def explicit_events(net, input_events, trials, duration_ms, dt):
    """Per trial, (steps int64, neuron idx int32) sorted by step; plus the neuron idx given input.

    A table without a `trial` column gives every trial the same events.
    """
    empty = [(np.zeros(0, np.int64), np.zeros(0, np.int32)) for _ in range(trials)]
    if input_events is None:
        return empty, np.zeros(0, np.int64)
    if not isinstance(input_events, pd.DataFrame) or not {"t_ms", "neuron"} <= set(input_events.columns):
        raise EmulationError("input_events must be a DataFrame with columns t_ms, neuron and optionally trial.")
    t_ms = input_events["t_ms"].to_numpy(dtype=np.float64)
    if len(t_ms) and (not np.isfinite(t_ms).all() or t_ms.min() < 0 or t_ms.max() >= duration_ms):
        raise EmulationError(f"input_events times must lie in [0, duration_ms = {duration_ms}) ms.")
    idx = net.index_of(input_events["neuron"].to_numpy(), "input_events neurons")
    steps = np.floor(t_ms / dt + 1e-6).astype(np.int64)
    if "trial" in input_events.columns:
        trial = input_events["trial"].to_numpy()
        if len(trial) and (trial.min() < 0 or trial.max() >= trials):
            raise EmulationError(f"input_events trials must lie in 0..{trials - 1} (trials={trials}).")
        out = []
        for t in range(trials):
            mine = trial == t
            order = np.argsort(steps[mine], kind="stable")
            out.append((steps[mine][order], idx[mine][order].astype(np.int32)))
    else:
        order = np.argsort(steps, kind="stable")
        out = [(steps[order], idx[order].astype(np.int32))] * trials
    return out, np.unique(idx)
