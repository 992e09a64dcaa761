"""Single-neuron checks against closed-form solutions: kicks, one PSP, refractory drops."""

import numpy as np
import pandas as pd
import pytest

from napari_wbe.connectome import Connectome
from napari_wbe.emulation import ModelParams, simulate


def _cx(edges=()):
    edges = pd.DataFrame(list(edges), columns=["pre", "post", "syn_count", "sign"])
    return Connectome(neurons=pd.DataFrame(index=pd.Index([1, 2, 3], name="neuron_id")), edges=edges)


def test_time_to_threshold_under_a_constant_kick_train():
    params = ModelParams(f_poi=4.0)  # one kick = 1.1 mV, one every step
    k_steps = 200
    events = pd.DataFrame({"t_ms": np.arange(k_steps) * 0.1, "neuron": 1})
    result = simulate(_cx(), input_events=events, duration_ms=k_steps * 0.1, params=params,
                      precision="float64")
    a = np.exp(-0.1 / 20.0)
    kick = params.kick
    # before the threshold of step k the neuron has had kicks at steps 0..k-1, each decayed once more
    depol = kick * a * (1 - a ** np.arange(k_steps)) / (1 - a)
    expected = int(np.argmax(depol > 7.0))
    assert result.spikes["t_ms"].iloc[0] == pytest.approx(expected * 0.1)


@pytest.mark.parametrize("t_mbr, tau", [(20.0, 5.0), (5.0, 5.0)])
def test_postsynaptic_potential_follows_the_closed_form(t_mbr, tau):
    params = ModelParams(t_mbr=t_mbr, tau=tau)
    cx = _cx([(1, 2, 4, 1)])  # 4 synapses: 1.1 mV into g, below threshold
    events = pd.DataFrame({"t_ms": [0.0], "neuron": [1]})  # neuron 1 spikes at step 1
    result = simulate(cx, input_events=events, duration_ms=30, params=params, precision="float64",
                      record_v=[2])
    v = result.v[2].to_numpy()
    w = 4 * params.w_syn
    t = np.arange(1, 200) * 0.1
    if t_mbr == tau:
        psp = w * t / t_mbr * np.exp(-t / t_mbr)
    else:
        psp = w * tau / (tau - t_mbr) * (np.exp(-t / tau) - np.exp(-t / t_mbr))
    # g jumps at step 1 + 18 = 19 (after that step's integration); v at the start of step 20 + m
    np.testing.assert_allclose(v[21:21 + 199] - params.v_0, psp[:len(v[21:220])], rtol=1e-9, atol=1e-12)
    assert np.all(v[:21] == params.v_0)


def _b_trace(arrival_step=None):
    """Neuron 2 is driven over threshold by neuron 1; neuron 3's spike reaches it at arrival_step."""
    cx = _cx([(1, 2, 300, 1), (3, 2, 4, 1)])
    times = [0.0] + ([] if arrival_step is None else [(arrival_step - 19) * 0.1])
    neurons = [1] + ([] if arrival_step is None else [3])
    events = pd.DataFrame({"t_ms": times, "neuron": neurons})
    result = simulate(cx, input_events=events, duration_ms=10, precision="float64", record_v=[2])
    b_spikes = result.spikes.loc[result.spikes["neuron"] == 2, "t_ms"].to_numpy()
    return result.v[2].to_numpy(), np.round(b_spikes / 0.1).astype(int)


def test_input_arriving_while_refractory_is_dropped():
    alone, spikes = _b_trace()
    assert len(spikes) == 1
    s = spikes[0]
    for arrival in (s, s + 10, s + 21):  # the spike step itself, and the 22-step refractory period
        trace, again = _b_trace(arrival)
        np.testing.assert_array_equal(trace, alone)
        np.testing.assert_array_equal(again, spikes)
    trace, _ = _b_trace(s + 22)  # the first step it is not refractory: input counts
    assert trace[s + 24] > alone[s + 24]
    assert np.all(alone[s + 1:s + 23] == ModelParams().v_rst)  # clamped at v_rst while refractory
