"""`to_brian2`: Brian2 running the objects it builds gives `simulate`'s float64 spikes.

brian2 2.9 does not import with numpy >= 2.4, so the Brian2 half runs in its own interpreter,
named by WBE_BRIAN2_PYTHON (it also needs pandas, pyarrow and numba there, to import this
package); without it those tests skip and say how. The other tests need no brian2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_wbe.connectome import Connectome
from napari_wbe.emulation import EmulationError, build_network, simulate, to_brian2
from napari_wbe.emulation.brian2_export import _generator_units, brian2_arrays
from tests.emulation_helpers import poisson_events, random_connectome

ROOT = Path(__file__).resolve().parents[1]
BRIAN2_PYTHON = os.environ.get("WBE_BRIAN2_PYTHON")
needs_brian2 = pytest.mark.skipif(
    not BRIAN2_PYTHON,
    reason='set WBE_BRIAN2_PYTHON to a Python with brian2 (python -m venv v; v/bin/pip install "numpy<2.4" '
           "brian2==2.9.0 pandas pyarrow numba)")

# The Brian2 side: what a user would write, on tables handed over as parquet files.
BRIAN2_SCRIPT = """
import json, sys, types
import brian2
import pandas as pd
from napari_wbe.emulation import to_brian2

folder = sys.argv[1]
options = json.load(open(f"{folder}/options.json"))
cx = types.SimpleNamespace(neurons=pd.read_parquet(f"{folder}/neurons.parquet"),
                           edges=pd.read_parquet(f"{folder}/edges.parquet"))
if options.pop("events"):
    options["input_events"] = pd.read_parquet(f"{folder}/events.parquet")
if "stimulus" in options:  # json keys are text
    options["stimulus"] = {int(k): v for k, v in options["stimulus"].items()}
brian2.prefs.codegen.target = "numpy"  # no compile: the test stays short; the model is the same
model = to_brian2(cx, **options)
model.run()
model.spike_table().to_parquet(f"{folder}/spikes.parquet")
"""


def _brian2_spikes(tmp_path, cx, events=None, **options):
    try:
        subprocess.run([BRIAN2_PYTHON, "-c", "import brian2, pandas, pyarrow, numba"], check=True,
                       capture_output=True)
    except subprocess.CalledProcessError as error:
        pytest.fail(f"{BRIAN2_PYTHON} cannot import brian2, pandas, pyarrow and numba (to_brian2 runs "
                    f"this package there): {error.stderr.decode()[-300:]}")
    cx.neurons.to_parquet(tmp_path / "neurons.parquet")
    cx.edges.to_parquet(tmp_path / "edges.parquet")
    if events is not None:
        events.to_parquet(tmp_path / "events.parquet")
    (tmp_path / "options.json").write_text(json.dumps({**options, "events": events is not None}))
    # its own numba cache: the other interpreter has another numpy
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    subprocess.run([BRIAN2_PYTHON, "-c", BRIAN2_SCRIPT, str(tmp_path)], check=True, env=env, cwd=ROOT,
                   timeout=600)
    return pd.read_parquet(tmp_path / "spikes.parquet")


def _spike_set(spikes, dt=0.1):
    return set(zip(np.round(spikes["t_ms"].to_numpy() / dt).astype(int).tolist(), spikes["neuron"].tolist()))


def _heterogeneous(seed=3, n=300):
    """Strongly active, mixed signs, and per-neuron t_mbr and v_th columns."""
    cx = random_connectome(n=n, seed=seed, log_mean=2.0)
    rng = np.random.default_rng(seed)
    neurons = cx.neurons.assign(t_mbr=rng.uniform(15.0, 25.0, n), v_th=-45.0 + rng.uniform(-1.0, 1.0, n))
    return Connectome(neurons=neurons, edges=cx.edges)


@needs_brian2
def test_to_brian2_spikes_equal_float64_engine(tmp_path):
    cx = _heterogeneous()
    ids = cx.neurons.index.to_numpy()
    events = poisson_events(ids[:60], 150, 500, seed=3).drop(columns="trial")
    events = pd.concat([events, events.iloc[:3]], ignore_index=True)  # a double kick: both count
    silence = [int(ids[100]), int(ids[101])]
    ours = simulate(cx, input_events=events, duration_ms=500, silence=silence, precision="float64")
    theirs = _brian2_spikes(tmp_path, cx, events, silence=silence, duration_ms=500)
    assert len(ours.spikes) > 5000  # strong activity, so equality means something
    assert _spike_set(theirs) == _spike_set(ours.spikes)


@needs_brian2
def test_to_brian2_poisson_stimulus_and_rate_steps(tmp_path):
    # no synapses: every kick (68.75 mV) makes exactly one spike, one step later
    ids = np.array([10, 20, 30], np.int64)
    cx = Connectome(neurons=pd.DataFrame(index=pd.Index(ids, name="neuron_id")),
                    edges=pd.DataFrame({"pre": np.zeros(0, np.int64), "post": np.zeros(0, np.int64),
                                        "syn_count": np.zeros(0, np.int64), "sign": np.zeros(0, np.int8)}))
    stimulus = {10: 150.0, 20: [(0.0, 100.0, 0.0), (100.0, 500.0, 200.0)]}
    spikes = _brian2_spikes(tmp_path, cx, stimulus=stimulus, duration_ms=500)
    count = spikes["neuron"].value_counts()
    assert 45 <= count.get(10, 0) <= 105     # 150 Hz x 0.5 s = 75
    assert 50 <= count.get(20, 0) <= 110     # 200 Hz x 0.4 s = 80
    assert spikes.loc[spikes["neuron"] == 20, "t_ms"].min() > 100.0
    assert count.get(30, 0) == 0


def test_to_brian2_without_brian2_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "brian2", None)  # "not installed", whatever this env has
    cx = random_connectome(n=20, targets=3)
    with pytest.raises(EmulationError, match=r"pip install.*numpy<2\.4"):
        to_brian2(cx, stimulus=[int(cx.neurons.index[0])])


def test_brian2_arrays_are_the_engines_network():
    cx = _heterogeneous(n=50)
    ids = cx.neurons.index.to_numpy()
    net = build_network(cx)
    events = pd.DataFrame({"t_ms": [1.0, 2.0], "neuron": [ids[3], ids[4]]})
    arrays = brian2_arrays(cx, stimulus={int(ids[5]): 100.0}, silence=[int(ids[0])], input_events=events,
                           duration_ms=50, network=net)
    expected = net.silenced_weights([0])
    np.testing.assert_array_equal(arrays["w_mv"], expected)
    edge_ids = set(zip(ids[arrays["pre"]].tolist(), ids[arrays["post"]].tolist()))
    assert edge_ids == set(zip(cx.edges["pre"].tolist(), cx.edges["post"].tolist()))
    assert np.flatnonzero(arrays["t_rfc"] == 0).tolist() == [3, 4, 5]  # stimulated: no refractory period
    np.testing.assert_array_equal(arrays["t_mbr"], cx.neurons["t_mbr"].to_numpy())
    two_trials = pd.DataFrame({"t_ms": [1.0, 2.0], "neuron": [ids[3], ids[4]], "trial": [0, 1]})
    with pytest.raises(EmulationError, match="one trial"):
        brian2_arrays(cx, input_events=two_trials, duration_ms=50)


def test_generator_units_split_double_kicks():
    # Brian2 allows one spike per generator unit and step: a repeated (neuron, step) needs a second unit
    steps = np.array([5, 5, 7, 5, 2])
    neurons = np.array([1, 1, 1, 2, 1])
    unit, target = _generator_units(steps, neurons)
    assert len(set(zip(unit.tolist(), steps.tolist()))) == len(steps)
    np.testing.assert_array_equal(target[unit], neurons)
    assert len(target) == 3  # neuron 1 twice (its double kick at step 5), neuron 2 once
