"""`to_brian2`: the network and inputs `simulate` would run, as Brian2 objects, to cross-check.

The model is the reference one (Shiu et al. 2024, philshiu/Drosophila_brain_model): a
NeuronGroup with DESIGN.md's equations, method='linear', per-neuron refractory period `rfc`,
Synapses `g += w` with one delay. `g` is flagged `(unless refractory)`, so Brian2 itself turns
`g += w` into a conditional write: input to a refractory neuron is dropped, as in our engine.

Two halves, so that the benchmarks and the parity test run exactly the code users get:
`brian2_arrays` (our side: ids, weights from `build_network`, stimuli parsed as `simulate`
parses them) returns plain numpy arrays; `build_brian2` turns such arrays into Brian2 objects
and needs nothing but numpy and brian2. brian2 2.9 does not import with numpy >= 2.4, so it
often lives in another interpreter; benchmarks/brian2_side.py loads this file there by path.
That is why this module imports only numpy at the top and the package lazily.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Neuron parameters of the Brian2 model, in mV or ms; t_rfc is always per neuron (stimulated
# neurons have none), the others are per neuron only when they differ.
_VOLT = ("v_0", "v_rst", "v_th")
_TIME = ("t_mbr", "tau")

INSTALL_HINT = (
    "brian2 is needed for to_brian2 but cannot be imported here ({error}). Install it with "
    "`pip install brian2`; brian2 2.9 needs numpy < 2.4, so with a newer numpy make a separate "
    'environment: python -m venv b2 && b2/bin/pip install "numpy<2.4" brian2==2.9.0 pandas numba, '
    "and run your script there with this package on PYTHONPATH.")


def brian2_arrays(cx, stimulus=None, silence=(), params=None, input_events=None, duration_ms=1000.0,
                  network=None) -> dict:
    """The network and one trial's inputs as `simulate` sees them, as plain arrays by index.

    Keys: ids, pre, post (int32 indices), w_mv (silenced weights, mV, identical to the
    engine's), v_0, v_rst, v_th (mV), t_mbr, tau, t_rfc (ms; 0 for stimulated neurons), dt,
    t_dly, kick_mv, duration_ms, Poisson segments seg_neuron, seg_start, seg_stop (steps),
    seg_p (probability per step), explicit kicks ev_step, ev_neuron.
    """
    from .network import build_network
    from .params import EmulationError, ModelParams
    from .stimulus import explicit_events, poisson_segments

    params = params or ModelParams()
    params.validate()
    if not (np.isfinite(duration_ms) and duration_ms > 0):
        raise EmulationError(f"duration_ms = {duration_ms}; it must be a positive number of ms.")
    if input_events is not None and "trial" in getattr(input_events, "columns", ()):
        if input_events["trial"].nunique() > 1:
            raise EmulationError("to_brian2 builds one trial; pass one trial's events, e.g. "
                                 "input_events[input_events.trial == 0].")
        input_events = input_events.drop(columns="trial")
    net = network if network is not None else build_network(cx, params)
    values = params.per_neuron(net.neurons)
    seg_neuron, seg_start, seg_stop, seg_p = poisson_segments(net, stimulus, duration_ms, params)
    [(ev_step, ev_neuron)], ev_idx = explicit_events(net, input_events, 1, duration_ms, params.dt)
    weights = net.silenced_weights(net.index_of(list(silence), "silenced ids"))
    t_rfc = values["t_rfc"].copy()
    t_rfc[np.union1d(seg_neuron, ev_idx).astype(np.int64)] = 0.0  # as simulate and the reference do
    arrays = {name: values[name] for name in _VOLT + _TIME}
    arrays.update(
        ids=net.ids, pre=np.repeat(np.arange(net.n, dtype=np.int32), np.diff(net.indptr)),
        post=net.targets, w_mv=np.asarray(weights, np.float64), t_rfc=t_rfc, dt=params.dt,
        t_dly=params.t_dly, kick_mv=params.kick, duration_ms=float(duration_ms),
        seg_neuron=seg_neuron, seg_start=seg_start, seg_stop=seg_stop, seg_p=seg_p,
        ev_step=ev_step, ev_neuron=ev_neuron)
    return arrays


def _generator_units(steps, neurons):
    """SpikeGeneratorGroup unit of each kick. Brian2 refuses two spikes of one unit in one
    step, but two kicks of one neuron in one step are allowed (each adds to v), so the k-th
    kick of a (neuron, step) pair goes to that neuron's k-th unit. Returns (unit of each
    kick, target neuron of each unit)."""
    order = np.lexsort((steps, neurons))
    s, nrn = steps[order], neurons[order]
    repeat = np.r_[False, (s[1:] == s[:-1]) & (nrn[1:] == nrn[:-1])]
    run = np.cumsum(~repeat) - 1
    rank = np.arange(len(s)) - np.flatnonzero(~repeat)[run]
    pairs, unit_sorted = np.unique(np.stack([nrn, rank], axis=1), axis=0, return_inverse=True)
    unit = np.empty(len(s), np.int64)
    unit[order] = unit_sorted.ravel()
    return unit, pairs[:, 0]


def build_brian2(b2, arrays) -> dict:
    """Brian2 objects for `brian2_arrays(...)`; `b2` is the imported brian2 module.

    Returns a dict: clock, neurons, synapses (None without edges), inputs (list),
    spikes (SpikeMonitor), network (a brian2.Network of all of them).
    """
    ms, mv = b2.ms, b2.mV
    n = len(arrays["ids"])
    clock = b2.Clock(dt=float(arrays["dt"]) * ms)  # one clock, and the global one left alone
    eqs = ["dv/dt = (v_0 - v + g) / t_mbr : volt (unless refractory)",
           "dg/dt = -g / tau : volt (unless refractory)", "rfc : second"]
    namespace, per_neuron = {}, {}
    for name, unit, unit_name in [(x, mv, "volt") for x in _VOLT] + [(x, ms, "second") for x in _TIME]:
        values = np.asarray(arrays[name], np.float64)
        if n and np.all(values == values[0]):
            # a namespace constant, as in the reference: Brian2 then computes exp(-dt/t_mbr)
            # etc. once per step instead of once per neuron and step
            namespace[name] = float(values[0]) * unit
        else:
            eqs.append(f"{name} : {unit_name} (constant)")
            per_neuron[name] = values * unit
    neurons = b2.NeuronGroup(n, "\n".join(eqs), method="linear", threshold="v > v_th",
                             reset="v = v_rst; g = 0 * mV", refractory="rfc", namespace=namespace,
                             clock=clock)
    for name, values in per_neuron.items():
        setattr(neurons, name, values)
    neurons.v = np.asarray(arrays["v_0"], np.float64) * mv
    neurons.g = 0 * mv
    neurons.rfc = np.asarray(arrays["t_rfc"], np.float64) * ms
    objects = [neurons]
    synapses = None
    if len(arrays["pre"]):
        synapses = b2.Synapses(neurons, neurons, "w : volt", on_pre="g += w",
                               delay=float(arrays["t_dly"]) * ms, clock=clock)
        synapses.connect(i=np.asarray(arrays["pre"]), j=np.asarray(arrays["post"]))
        synapses.w = np.asarray(arrays["w_mv"], np.float64) * mv
        objects.append(synapses)
    kick = {"kick": float(arrays["kick_mv"]) * mv}
    inputs = []
    if len(arrays["seg_neuron"]):
        # One Poisson source per stimulus segment, like the reference's PoissonInput(N=1):
        # at most one kick per step, with probability rate x dt, within [start, stop) steps.
        source = b2.NeuronGroup(len(arrays["seg_neuron"]),
                                "p : 1 (constant)\nk_start : integer (constant)\nk_stop : integer (constant)",
                                threshold="t_in_timesteps >= k_start and t_in_timesteps < k_stop and rand() < p",
                                clock=clock)
        source.p = np.asarray(arrays["seg_p"], np.float64)
        source.k_start = np.asarray(arrays["seg_start"], np.int64)
        source.k_stop = np.asarray(arrays["seg_stop"], np.int64)
        inputs += [source, _kicks(b2, source, neurons, np.asarray(arrays["seg_neuron"]), kick, clock)]
    if len(arrays["ev_step"]):
        steps = np.asarray(arrays["ev_step"], np.int64)
        unit, target = _generator_units(steps, np.asarray(arrays["ev_neuron"], np.int64))
        generator = b2.SpikeGeneratorGroup(len(target), unit, steps * float(arrays["dt"]) * ms, clock=clock)
        inputs += [generator, _kicks(b2, generator, neurons, target, kick, clock)]
    spikes = b2.SpikeMonitor(neurons)
    return {"clock": clock, "neurons": neurons, "synapses": synapses, "inputs": inputs, "spikes": spikes,
            "network": b2.Network(*objects, *inputs, spikes)}


def _kicks(b2, source, neurons, targets, kick, clock):
    """Synapses from unit u of `source` to neuron targets[u], adding the kick to v at once
    (in the same step, before the reset, as the engine's step 3)."""
    syn = b2.Synapses(source, neurons, on_pre="v_post += kick", namespace=kick, clock=clock)
    syn.connect(i=np.arange(len(targets)), j=targets)
    return syn


@dataclass
class Brian2Model:
    """What `to_brian2` returns: run `network` (or `run()`), read `spikes` (a SpikeMonitor)."""

    network: object
    neurons: object
    synapses: object
    inputs: list
    spikes: object
    ids: np.ndarray       # neuron id of each Brian2 index
    duration_ms: float
    arrays: dict = field(repr=False)  # the plain arrays the objects were built from

    def index_of(self, ids) -> np.ndarray:
        """Brian2 indices of connectome neuron ids (-1 where unknown)."""
        import pandas as pd

        return pd.Index(self.ids).get_indexer(np.asarray(ids))

    def run(self, duration_ms=None):
        import brian2

        self.network.run(float(duration_ms or self.duration_ms) * brian2.ms)
        return self

    def spike_table(self):
        """The recorded spikes as `simulate`'s table: t_ms (a multiple of dt), trial 0, neuron id."""
        import pandas as pd

        dt = float(self.arrays["dt"])
        steps = np.round(np.asarray(self.spikes.t_) * 1000.0 / dt)  # t_: seconds, without units
        return pd.DataFrame({"t_ms": steps * dt, "trial": np.zeros(len(steps), np.int64),
                             "neuron": self.ids[np.asarray(self.spikes.i, np.int64)]})


def to_brian2(cx, stimulus=None, silence=(), params=None, input_events=None, duration_ms=1000.0,
              network=None) -> Brian2Model:
    """The model `simulate` runs, as Brian2 objects: same weights (from `build_network`, with
    `silence` applied), same parameters (per-neuron columns included), Poisson input for
    `stimulus` (as simulate accepts it) or a SpikeGeneratorGroup for `input_events` (one
    trial), stimulated neurons without a refractory period.

        m = to_brian2(cx, input_events=events, duration_ms=1000)
        brian2.prefs.codegen.target = "cython"   # optional; Brian2's default is also fine
        m.run(); m.spike_table()                 # t_ms, trial, neuron: like simulate(...).spikes

    Given the same explicit input_events, the spikes equal simulate(..., precision="float64").
    network: a prebuilt `build_network(cx, params)`, as for simulate.
    """
    from .params import EmulationError

    try:
        import brian2
    except Exception as error:  # ImportError, or brian2 2.9 failing on numpy >= 2.4
        raise EmulationError(INSTALL_HINT.format(error=f"{type(error).__name__}: {error}")) from error
    arrays = brian2_arrays(cx, stimulus=stimulus, silence=silence, params=params, input_events=input_events,
                           duration_ms=duration_ms, network=network)
    objects = build_brian2(brian2, arrays)
    return Brian2Model(network=objects["network"], neurons=objects["neurons"], synapses=objects["synapses"],
                       inputs=objects["inputs"], spikes=objects["spikes"], ids=arrays["ids"],
                       duration_ms=float(duration_ms), arrays=arrays)
