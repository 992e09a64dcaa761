"""Activity frames for playing an emulation in place: the neuron-index volume, flashes that
never skip a spike, membrane potential, colour tables and raster rows. No display needed."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest

from napari_wbe.emulation import EmulationError, ModelParams, simulate
from napari_wbe.emulation.activity import (
    MAX_SHOWN_NEURONS,
    ROLE_COLOURS,
    SPIKES,
    VOLTAGE,
    ActivityFrames,
    activity_colours,
    neuron_index_volume,
    pyramid,
    raster_rows,
)
from napari_wbe.emulation.simulate import SimulationResult
from napari_wbe.phantom import mini_brain


@pytest.fixture(scope="module")
def brain():
    return mini_brain(n_neurons=20, shape=(24, 96, 96), seed=3)


def test_index_volume_maps_ids_and_finds_centroids(brain):
    labels = brain.labels.astype(np.uint64) * 1_000_003  # big ids, like FlyWire's
    ids = np.unique(labels[labels > 0]).astype(np.int64)[::-1]  # any order
    ids = np.append(ids, 424242)  # a neuron with no voxels
    index, counts, centroids = neuron_index_volume(labels, ids)
    assert index.dtype == np.uint16
    shown = index > 0
    np.testing.assert_array_equal(shown, labels > 0)
    np.testing.assert_array_equal(ids[index[shown].astype(int) - 1], labels[shown].astype(np.int64))
    np.testing.assert_array_equal(counts[:-1], [int((labels == i).sum()) for i in ids[:-1]])
    assert counts[-1] == 0 and np.isnan(centroids[-1]).all()
    np.testing.assert_allclose(centroids[0], np.argwhere(labels == ids[0]).mean(axis=0))
    chunked = neuron_index_volume(da.from_array(labels, chunks=(7, 40, 33)), ids)
    np.testing.assert_array_equal(chunked[0], index)
    np.testing.assert_allclose(chunked[2], centroids, equal_nan=True)


def test_index_volume_refuses_what_it_cannot_show(brain):
    with pytest.raises(EmulationError, match="3D"):
        neuron_index_volume(brain.labels[0], [1, 2])
    with pytest.raises(EmulationError, match="as points"):
        neuron_index_volume(brain.labels, np.arange(1, MAX_SHOWN_NEURONS + 2))


def test_pyramid_is_views_halving():
    volume = np.zeros((64, 128, 128), np.uint16)
    levels = pyramid(volume)
    assert [level.shape for level in levels] == [(64, 128, 128), (32, 64, 64), (16, 32, 32)]
    assert all(np.shares_memory(level, volume) for level in levels)


def result_with(spikes, duration_ms=20.0, ids=(5, 6, 7), trials=1, v=None):
    return SimulationResult(spikes=pd.DataFrame(spikes, columns=["t_ms", "trial", "neuron"]),
                            neuron_ids=np.array(ids), duration_ms=duration_ms, trials=trials,
                            params=ModelParams(), v=v)


def test_flash_shows_every_spike_and_fades():
    result = result_with([(2.0, 0, 5), (2.2, 0, 5), (7.5, 0, 6)], duration_ms=40)
    frames = ActivityFrames(result, frame_ms=5.0, flash_ms=10.0)
    assert frames.n_frames == 9 and frames.time_ms(8) == 40
    assert frames.values(0).tolist() == [0, 0, 0]
    first = frames.values(1)  # t = 5: the spikes at 2 and 2.2 ms happened since the last frame
    assert first[0] == 1.0 and first[1] == 0
    second = frames.values(2)  # t = 10: neuron 6 fresh, neuron 5 fading
    assert second[1] == 1.0 and 0 < second[0] < 1
    assert second[0] == pytest.approx(np.exp(-(10 - 2.2 - 5) / 10), rel=1e-5)
    assert frames.values(8)[1] == pytest.approx(np.exp(-(40 - 7.5 - 5) / 10), rel=1e-5)
    fast = ActivityFrames(result, frame_ms=20.0)  # frames far apart skip no spike
    assert fast.values(1)[[0, 1]].tolist() == [1.0, 1.0]


def test_flash_reads_one_trial_and_voltage_needs_traces(brain):
    cx = brain.connectome
    first = int(cx.neurons.index[0])
    result = simulate(cx, stimulus={first: 150.0}, duration_ms=100, trials=2, record_v=[first])
    for trial in (0, 1):
        frames = ActivityFrames(result, trial=trial, frame_ms=0.1)
        mine = result.spikes[(result.spikes["trial"] == trial) & (result.spikes["neuron"] == first)]
        at_spikes = {int(round(t / 0.1)) for t in mine["t_ms"]}
        lit = {f for f in range(frames.n_frames) if frames.values(f)[0] == 1.0}
        assert at_spikes <= lit <= at_spikes | {f + 1 for f in at_spikes}  # one frame later: float rounding
    voltage = ActivityFrames(result, mode=VOLTAGE, frame_ms=0.1)
    v = result.v.loc[0][first].to_numpy()
    level = [voltage.values(f)[0] for f in range(len(v))]
    params = result.params
    np.testing.assert_allclose(level, np.clip((v - params.v_rst) / (params.v_th - params.v_rst), 0, 1), atol=1e-6)
    assert all(voltage.values(10)[1:] == 0)  # untraced neurons stay dark
    with pytest.raises(EmulationError, match="record_v"):
        ActivityFrames(simulate(cx, stimulus={first: 150.0}, duration_ms=10), mode=VOLTAGE)
    with pytest.raises(EmulationError, match="Trial 2"):
        ActivityFrames(result, trial=2)
    assert ActivityFrames(result).mode == SPIKES


def test_colours_background_roles_and_heat():
    colours = activity_colours(np.array([0.0, 1.0, 0.0, 0.5], np.float32),
                               np.array(["", "", "stimulated", "silenced"]))
    assert colours.shape == (5, 4) and colours.dtype == np.float32
    assert (colours[0] == 0).all()  # background stays transparent
    assert colours[2].tolist() == [1.0, 1.0, 1.0, 1.0]  # a fresh spike is white and opaque
    np.testing.assert_allclose(colours[3], ROLE_COLOURS["stimulated"])
    assert colours[1, 3] < colours[4, 3] < 1


def test_raster_rows_put_the_picked_first():
    result = result_with([(1.0, 0, 7), (2.0, 0, 7), (3.0, 0, 6), (4.0, 1, 5)])
    spikes, order = raster_rows(result, trial=0, first=[5])
    assert order.tolist() == [5, 7, 6] and len(spikes) == 3
    assert spikes.loc[spikes["neuron"] == 6, "row"].tolist() == [2]
    assert raster_rows(result, trial=0, max_rows=1)[1].tolist() == [7]
