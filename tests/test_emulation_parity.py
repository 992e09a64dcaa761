"""The compiled engine against the plain-numpy reference written from DESIGN.md's step list."""

import numpy as np
import pytest

from napari_wbe.emulation import ModelParams, build_network, simulate
from napari_wbe.emulation.engine import propagator
from napari_wbe.emulation.reference import exact_step_matrix, reference_simulate
from tests.emulation_helpers import poisson_events, random_connectome


@pytest.mark.parametrize("t_mbr, tau", [(20.0, 5.0), (5.0, 20.0), (7.0, 7.0), (7.0, 7.0 + 1e-9), (0.3, 11.0)])
def test_propagator_equals_matrix_exponential(t_mbr, tau):
    a, b, c = propagator(t_mbr, tau, 0.1)
    m = exact_step_matrix(t_mbr, tau, 0.1)
    np.testing.assert_allclose([[a, b], [0.0, c]], m, rtol=1e-12, atol=1e-15)


def _reference_spikes(cx, events, n_steps, params=None, per_neuron=None):
    net = build_network(cx, params)
    pre = net.index_of(cx.edges["pre"].to_numpy())
    post = net.index_of(cx.edges["post"].to_numpy())
    w = cx.edges["syn_count"].to_numpy() * cx.edges["sign"].to_numpy() * (params or ModelParams()).w_syn
    kick_idx = net.index_of(events["neuron"].to_numpy())
    steps = np.round(events["t_ms"].to_numpy() / 0.1).astype(int)
    spikes, _ = reference_simulate(net.n, pre, post, w, steps, kick_idx, n_steps, params=params,
                                   per_neuron=per_neuron, stimulated=np.unique(kick_idx))
    return {(k, int(net.ids[i])) for k, i in spikes}


def _engine_spikes(result):
    return set(zip(np.round(result.spikes["t_ms"].to_numpy() / 0.1).astype(int).tolist(),
                   result.spikes["neuron"].tolist()))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_float64_engine_matches_reference_spike_for_spike(seed):
    cx = random_connectome(n=300, seed=seed, log_mean=2.0)
    ids = cx.neurons.index.to_numpy()
    events = poisson_events(ids[:60], 150, 300, seed=seed)
    result = simulate(cx, input_events=events, duration_ms=300, precision="float64")
    engine = _engine_spikes(result)
    reference = _reference_spikes(cx, events, 3000)
    recurrent = result.spikes[~result.spikes["neuron"].isin(ids[:60])]
    assert recurrent["neuron"].nunique() > 100 and len(recurrent) > 1000  # strong, mixed activity
    assert engine == reference


def test_float64_engine_matches_reference_with_per_neuron_parameters():
    cx = random_connectome(n=200, seed=5, log_mean=2.0)
    rng = np.random.default_rng(5)
    per_neuron = {"t_mbr": rng.uniform(10, 30, 200), "tau": rng.uniform(3, 8, 200),
                  "v_th": rng.uniform(-47, -43, 200), "v_rst": rng.uniform(-60, -52, 200),
                  "t_rfc": rng.choice([1.0, 2.2, 4.0], 200)}
    per_neuron["tau"][:20] = per_neuron["t_mbr"][:20]  # the degenerate propagator too
    for name, values in per_neuron.items():
        cx.neurons[name] = values
    events = poisson_events(cx.neurons.index[:40], 150, 300, seed=5)
    result = simulate(cx, input_events=events, duration_ms=300, precision="float64")
    assert len(result.spikes) > 1000
    assert _engine_spikes(result) == _reference_spikes(cx, events, 3000, per_neuron=per_neuron)


def test_float32_spike_counts_close_to_float64():
    cx = random_connectome(n=300, seed=3, log_mean=2.0)
    events = poisson_events(cx.neurons.index[:60], 150, 500, seed=3)
    counts = [simulate(cx, input_events=events, duration_ms=500, precision=p).spikes["neuron"]
              .value_counts().reindex(cx.neurons.index, fill_value=0) for p in ("float32", "float64")]
    assert abs(counts[0].sum() - counts[1].sum()) <= 0.02 * counts[1].sum()
    assert (np.abs(counts[0] - counts[1]) <= 3 * np.sqrt(counts[1]) + 3).all()
