"""A slow, plain-numpy float64 model written straight from DESIGN.md's step list.

It shares no code with the compiled engine (its propagator comes from a matrix
exponential, its bookkeeping is Brian2's: last spike step and a not_refractory flag), so
that agreement between the two is evidence, not an echo. Explicit kicks only: it tests the
dynamics; the Poisson generator is tested statistically.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import expm

from .params import ModelParams


def exact_step_matrix(t_mbr, tau, dt):
    """M with [v - v0, g](t + dt) = M [v - v0, g](t), from expm of the linear system."""
    system = np.array([[-1.0 / t_mbr, 1.0 / t_mbr], [0.0, -1.0 / tau]])
    return expm(system * dt)


def reference_simulate(n, pre, post, weight, kick_steps, kick_neurons, n_steps, params=None,
                       per_neuron=None, stimulated=()):
    """Spikes (list of (step, neuron index)) and the v trace (n_steps x n, at step start).

    pre, post, weight: one entry per synapse (indices, mV). kick_steps/kick_neurons: the
    explicit input kicks (each adds w_syn * f_poi to v). per_neuron: optional dict of
    arrays for v_0, v_rst, v_th, t_mbr, tau, t_rfc. Stimulated neurons get t_rfc = 0.
    """
    p = params or ModelParams()
    values = {name: np.full(n, float(getattr(p, name))) for name in ("v_0", "v_rst", "v_th", "t_mbr", "tau", "t_rfc")}
    values.update({k: np.asarray(x, float) for k, x in (per_neuron or {}).items()})
    values["t_rfc"][list(stimulated)] = 0.0
    matrices = np.array([exact_step_matrix(values["t_mbr"][i], values["tau"][i], p.dt) for i in range(n)])
    synapses_of = {}  # presynaptic index -> its synapse rows, in table order
    for syn, j in enumerate(np.asarray(pre)):
        synapses_of.setdefault(int(j), []).append(syn)
    refractory_steps = np.round(values["t_rfc"] / p.dt).astype(int)
    delay = int(round(p.t_dly / p.dt))

    v = values["v_0"].copy()
    g = np.zeros(n)
    last_spike = np.full(n, -10**9)
    spikes_at = {}  # step -> indices that spiked then
    kicks = {}
    for s, i in zip(kick_steps, kick_neurons):
        kicks.setdefault(int(s), []).append(int(i))
    trace = np.zeros((n_steps, n))
    spikes = []
    for k in range(n_steps):
        trace[k] = v
        not_refractory = (k - last_spike) >= refractory_steps
        # 1. neurons not refractory integrate exactly over dt
        live = np.flatnonzero(not_refractory)
        state = np.stack([v[live] - values["v_0"][live], g[live]], axis=1)
        state = np.einsum("nij,nj->ni", matrices[live], state)
        v[live] = values["v_0"][live] + state[:, 0]
        g[live] = state[:, 1]
        # 2. threshold
        spiking = np.flatnonzero((v > values["v_th"]) & not_refractory)
        not_refractory[spiking] = False
        last_spike[spiking] = k
        spikes_at[k] = spiking
        spikes.extend((k, int(i)) for i in spiking)
        # 3. delivery of the spikes sent D steps ago, dropped at refractory targets; then kicks
        for j in spikes_at.pop(k - delay, ()):
            for syn in synapses_of.get(int(j), ()):
                if not_refractory[post[syn]]:
                    g[post[syn]] += weight[syn]
        for i in kicks.get(k, ()):
            v[i] += p.w_syn * p.f_poi
        # 4. reset
        v[spiking] = values["v_rst"][spiking]
        g[spiking] = 0.0
    return spikes, trace
