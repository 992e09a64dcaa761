"""simulate() on the phantom's connectome: rates, silencing, reproducibility, bad input, controls."""

import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from napari_wbe.connectome import Connectome
from napari_wbe.emulation import (
    EmulationError,
    EmulationWarning,
    ModelParams,
    build_network,
    frequency_sweep,
    shuffle_targets,
    shuffle_weights,
    simulate,
)
from napari_wbe.phantom import mini_brain
from tests.emulation_helpers import random_connectome


@pytest.fixture(scope="module")
def cx():
    return mini_brain(n_neurons=40, seed=0).connectome


def test_stimulated_neuron_fires_at_its_poisson_rate(cx):
    result = simulate(cx, stimulus={5: 150.0}, duration_ms=1000, trials=10)
    rate = result.rates().set_index("neuron").loc[5]
    # one kick -> one spike; a kick in the step right after a spike is lost: r (1 - r dt)
    assert rate["mean_hz"] == pytest.approx(150 * (1 - 0.015), abs=12)
    assert rate["sd_hz"] > 0


def test_stepped_stimulus_fires_only_inside_its_window(cx):
    result = simulate(cx, stimulus={5: [(200.0, 400.0, 300.0)]}, duration_ms=600)
    t = result.spikes.loc[result.spikes["neuron"] == 5, "t_ms"]
    assert len(t) > 30 and t.min() >= 200 and t.max() <= 400.2


def test_silencing_the_inputs_silences_a_neuron_driven_only_by_them(cx):
    target = 37
    inputs = cx.edges.loc[cx.edges["post"] == target, "pre"].unique().tolist()
    stimulus = {int(i): 300.0 for i in inputs}
    driven = simulate(cx, stimulus=stimulus, duration_ms=1000, trials=2).rates().set_index("neuron")
    silenced = simulate(cx, stimulus=stimulus, duration_ms=1000, trials=2,
                        silence=inputs).rates().set_index("neuron")
    assert driven.loc[target, "mean_hz"] > 10
    assert silenced.loc[target, "mean_hz"] == 0
    assert silenced.loc[inputs, "mean_hz"].min() > 200  # silenced neurons still fire, nobody hears them


def test_same_seed_same_spikes_regardless_of_threads_and_trial_count():
    cx = random_connectome(n=300, seed=0, log_mean=2.0)
    stim = {int(i): 150.0 for i in cx.neurons.index[:30]}
    one = simulate(cx, stimulus=stim, duration_ms=300, trials=3, seed=7, n_threads=1).spikes
    two = simulate(cx, stimulus=stim, duration_ms=300, trials=3, seed=7, n_threads=2).spikes
    pd.testing.assert_frame_equal(one, two)
    first = simulate(cx, stimulus=stim, duration_ms=300, trials=1, seed=7).spikes
    pd.testing.assert_frame_equal(first, one[one["trial"] == 0])
    other = simulate(cx, stimulus=stim, duration_ms=300, trials=1, seed=8).spikes
    assert not first.equals(other)
    assert not one[one["trial"] == 1].reset_index(drop=True)[["t_ms", "neuron"]].equals(
        first[["t_ms", "neuron"]])


def test_rates_cover_every_neuron_and_traces_and_progress(cx):
    calls = []
    result = simulate(cx, stimulus={5: 150.0}, duration_ms=250, trials=2, record_v=[5, 6],
                      progress=lambda done, total: calls.append((done, total)))
    rates = result.rates()
    assert list(rates["neuron"]) == list(cx.neurons.index) and (rates["mean_hz"] >= 0).all()
    assert result.v.shape == (2 * 2500, 2) and list(result.v.columns) == [5, 6]
    assert calls[-1] == (6, 6) and [c[0] for c in calls] == list(range(1, 7))


def test_network_is_csr_by_presynaptic_index():
    cx = random_connectome(n=50, targets=5, seed=2)
    net = build_network(cx)
    for j in range(net.n):
        rows = cx.edges[cx.edges["pre"] == net.ids[j]]
        got = sorted(zip(net.ids[net.targets[net.indptr[j]:net.indptr[j + 1]]].tolist(),
                         net.weights[net.indptr[j]:net.indptr[j + 1]].round(9).tolist()))
        want = sorted(zip(rows["post"].tolist(), (rows["syn_count"] * rows["sign"] * 0.275).round(9).tolist()))
        assert got == want


def test_electrical_edges_are_ignored_with_a_warning():
    neurons = pd.DataFrame(index=pd.Index([1, 2], name="neuron_id"))
    edges = pd.DataFrame({"pre": [1, 2], "post": [2, 1], "syn_count": [3, 3], "sign": [1, 1],
                          "kind": ["chemical", "electrical"]})
    with pytest.warns(EmulationWarning, match="electrical"):
        net = build_network(Connectome(neurons=neurons, edges=edges))
    assert len(net.targets) == 1


@pytest.mark.parametrize("kwargs, match", [
    ({"stimulus": {999: 150.0}}, "not neurons of the connectome"),
    ({"stimulus": {5: -1.0}}, "rates must be >= 0"),
    ({"stimulus": {5: [(10.0, 5.0, 100.0)]}}, "time window"),
    ({"duration_ms": -5}, "duration_ms"),
    ({"params": ModelParams(dt=2.0)}, "larger than the synaptic delay"),
    ({"params": ModelParams(dt=0.1, t_rfc=0.05)}, "larger than the refractory period"),
    ({"params": ModelParams(w_syn=float("inf"))}, "finite"),
    ({"silence": [12345]}, "silenced ids"),
    ({"input_events": pd.DataFrame({"t_ms": [5000.0], "neuron": [5]})}, r"\[0, duration_ms"),
    ({"precision": "float16"}, "precision"),
])
def test_bad_input_is_refused_before_simulating(cx, kwargs, match):
    with pytest.raises(EmulationError, match=match):
        simulate(cx, **{"stimulus": {5: 150.0}, **kwargs})


def test_nan_parameter_column_is_refused(cx):
    neurons = cx.neurons.copy()
    neurons["t_mbr"] = 20.0
    neurons.iloc[3, neurons.columns.get_loc("t_mbr")] = np.nan
    with pytest.raises(EmulationError, match="'t_mbr' has 1 missing"):
        simulate(Connectome(neurons=neurons, edges=cx.edges), stimulus={5: 150.0})


def test_shuffles_preserve_what_they_promise(cx):
    deg = cx.degrees()
    targets = shuffle_targets(cx, seed=1)
    pd.testing.assert_frame_equal(targets.degrees()[["in_degree", "out_degree"]], deg[["in_degree", "out_degree"]])
    assert not targets.edges["post"].equals(cx.edges["post"])
    weights = shuffle_weights(cx, seed=1)
    assert weights.edges[["pre", "post"]].equals(cx.edges[["pre", "post"]])
    assert sorted(weights.edges["syn_count"] * weights.edges["sign"]) == sorted(cx.edges["syn_count"] * cx.edges["sign"])
    assert not weights.edges["syn_count"].equals(cx.edges["syn_count"])


def test_frequency_sweep_readout_grows_with_stimulus_rate(cx):
    inputs = cx.edges.loc[cx.edges["post"] == 37, "pre"].unique().tolist()
    sweep = frequency_sweep(cx, inputs, [37], rates=[0, 100, 300], duration_ms=500, trials=2)
    assert list(sweep.columns) == ["stimulus_hz", "neuron", "mean_hz", "sd_hz"]
    assert sweep["mean_hz"].iloc[0] == 0 and sweep["mean_hz"].is_monotonic_increasing


def test_import_needs_no_qt():
    code = ("import sys, napari_wbe.emulation; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('qtpy', 'PyQt5', 'PyQt6', 'napari')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_exception_from_progress_stops_every_trial_promptly():
    cx = mini_brain(n_neurons=20, shape=(24, 96, 96), seed=0).connectome

    def cancel(done, total):
        raise KeyboardInterrupt("cancelled")

    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        simulate(cx, stimulus={int(cx.neurons.index[0]): 150.0}, duration_ms=600_000, trials=2, progress=cancel)
    assert time.perf_counter() - start < 5  # 2 x 10 minutes of model time were not run to the end
