"""from_segmentation: the phantom's true connectome, chunked reads, and bad input."""

from __future__ import annotations

import itertools

import dask.array as da
import numpy as np
import pandas as pd
import pytest

from napari_wbe import connectome
from napari_wbe.connectome import ConnectomeError, ConnectomeWarning
from napari_wbe.phantom import mini_brain


@pytest.fixture(scope="module")
def mb():
    return mini_brain(n_neurons=40, seed=0)


@pytest.fixture(scope="module")
def built(mb):
    return connectome.from_segmentation(mb.labels, mb.synapses)


def tiny_volume():
    """Two cubes (ids 3 and 9) and background; synapses between them, one per kind of case."""
    labels = np.zeros((4, 6, 6), np.uint32)
    labels[:, :3, :] = 3
    labels[:, 3:5, :] = 9
    rows = [  # pre (z, y, x), post (z, y, x), nt
        ((0, 2, 0), (0, 3, 0), "ACh"), ((1, 2, 1), (1, 3, 1), "ACh"), ((2, 2, 2), (2, 3, 2), "GABA"),
        ((0, 3, 3), (0, 2, 3), "Glu"),
        ((0, 0, 0), (0, 1, 0), "ACh"),        # autapse: both ends in 3
        ((0, 4, 0), (0, 5, 0), "Glu"),        # post end on background
    ]
    table = pd.DataFrame([[*pre, *post, nt] for pre, post, nt in rows],
                         columns=connectome.SYNAPSE_COLUMNS + ["nt"])
    return labels, table


def test_phantom_connectome_is_recovered_edge_for_edge(mb, built):
    pd.testing.assert_frame_equal(built.edges, mb.connectome.edges)
    assert built.edges["syn_count"].sum() == len(mb.synapses)
    assert built.report["counted"] == len(mb.synapses) and built.report["autapses"] == 0


def test_phantom_neuron_table(mb, built):
    neurons = built.neurons
    assert neurons.index.dtype == np.int64 and list(neurons.index) == list(mb.neurons.index)
    np.testing.assert_array_equal(neurons["size"], mb.neurons["n_voxels"])
    voted = neurons["nt"].notna()
    assert voted.sum() == (neurons["syn_out"] > 0).sum()
    assert (neurons.loc[voted, "nt"] == mb.neurons.loc[voted, "nt"]).all()
    assert (neurons.loc[voted, "nt_agreement"] == 1.0).all() and not neurons["mixed_nt"].any()
    z, y, x = np.nonzero(mb.labels == 7)
    np.testing.assert_allclose(neurons.loc[7, ["centroid_z", "centroid_y", "centroid_x"]], [z.mean(), y.mean(), x.mean()])
    np.testing.assert_array_equal(neurons["syn_out"], built.edges.groupby("pre")["syn_count"].sum().reindex(neurons.index, fill_value=0))
    np.testing.assert_array_equal(neurons["in_degree"], built.edges.groupby("post").size().reindex(neurons.index, fill_value=0))


def test_dask_labels_give_the_numpy_result(mb, built):
    chunked = da.from_array(mb.labels, chunks=(16, 50, 70))
    again = connectome.from_segmentation(chunked, mb.synapses)
    assert again.equals(built)


def test_zarr_labels_are_read_block_by_block(mb, built):
    zarr = pytest.importorskip("zarr")
    store = zarr.create_array(store={}, shape=mb.labels.shape, chunks=(24, 64, 64), dtype=mb.labels.dtype)
    store[:] = mb.labels
    assert connectome.from_segmentation(store, mb.synapses).equals(built)


def test_type_and_user_columns_survive_a_rebuild(mb, built):
    given = pd.DataFrame({"type": mb.neurons["cell_type"], "notes": "checked", "size": -1}, index=mb.neurons.index)
    again = connectome.from_segmentation(mb.labels, mb.synapses, neurons=given)
    assert (again.neurons["type"] == mb.neurons["cell_type"]).all()
    assert (again.neurons["notes"] == "checked").all()
    assert (again.neurons["size"] == built.neurons["size"]).all()  # computed columns are recomputed
    assert list(again.neurons.columns[:4]) == ["size", "centroid_z", "centroid_y", "centroid_x"]


def test_background_and_autapses_are_counted_and_reported():
    labels, table = tiny_volume()
    with pytest.warns(ConnectomeWarning, match="2 of 6 synapses are not in the edges"):
        cx = connectome.from_segmentation(labels, table)
    assert cx.report["autapses"] == 1 and cx.report["background_post"] == 1
    assert list(cx.report["autapse_rows"]) == [4] and list(cx.report["background_rows"]) == [5]
    assert cx.edges[["pre", "post", "syn_count"]].values.tolist() == [[3, 9, 3], [9, 3, 1]]
    # NT vote over 3's counted synapses: ACh 2 of 3, so mixed at the default 0.7.
    assert cx.neurons.loc[3, "nt"] == "ACh" and cx.neurons.loc[3, "nt_agreement"] == pytest.approx(2 / 3)
    assert bool(cx.neurons.loc[3, "mixed_nt"]) and cx.neurons.loc[9, "sign"] == -1
    assert cx.edges["sign"].tolist() == [1, -1]


def test_min_confidence_leaves_out_and_counts():
    labels, table = tiny_volume()
    table["confidence"] = [0.9, 0.2, 0.9, 0.9, 0.9, 0.9]
    with pytest.warns(ConnectomeWarning):
        cx = connectome.from_segmentation(labels, table, min_confidence=0.5)
    assert cx.report["below_confidence"] == 1 and cx.edges["syn_count"].tolist() == [2, 1]
    with pytest.raises(ConnectomeError, match="confidence"):
        connectome.from_segmentation(labels, table.drop(columns="confidence"), min_confidence=0.5)


def test_coordinates_outside_the_volume_are_refused_before_any_work():
    labels, table = tiny_volume()
    table.loc[2, "post_x"] = 6
    table.loc[3, "pre_z"] = -1
    with pytest.raises(ConnectomeError, match=r"2 of 6 synapses lie outside .*\(4, 6, 6\).*row 2") as err:
        connectome.from_segmentation(labels, table)
    assert "voxel" in str(err.value)


def test_missing_columns_are_listed_with_the_expected_ones():
    labels, table = tiny_volume()
    with pytest.raises(ConnectomeError, match=r"lacks the columns \['post_y'\]") as err:
        connectome.from_segmentation(labels, table.drop(columns="post_y"))
    assert all(c in str(err.value) for c in connectome.SYNAPSE_COLUMNS)


def test_float_coordinates_round_to_the_nearest_voxel_and_nan_is_refused():
    labels, table = tiny_volume()
    shifted = table.astype({c: float for c in connectome.SYNAPSE_COLUMNS})
    shifted[connectome.SYNAPSE_COLUMNS] += 0.3
    with pytest.warns(ConnectomeWarning):
        assert connectome.from_segmentation(labels, shifted).edges.equals(
            connectome.from_segmentation(labels, table).edges)
    shifted.loc[1, "pre_y"] = np.nan
    with pytest.raises(ConnectomeError, match="1 synapses have missing"):
        connectome.from_segmentation(labels, shifted)


def test_unknown_nt_warns_and_gets_sign_zero_and_aliases_fold():
    labels, table = tiny_volume()
    table = table.iloc[:4].copy()
    table["nt"] = ["acetylcholine", "ACH", "Ach", "Tyramine"]
    with pytest.warns(ConnectomeWarning, match=r"not in the NT-to-sign mapping.*Tyramine"):
        cx = connectome.from_segmentation(labels, table)
    assert cx.neurons.loc[3, "nt"] == "ACh" and cx.neurons.loc[9, "sign"] == 0
    assert cx.report["unknown_nt"] == ["Tyramine"]
    custom = connectome.from_segmentation(labels, table, nt_sign={"ACh": -1, "Tyramine": 1})
    assert custom.neurons.loc[[3, 9], "sign"].tolist() == [-1, 1]


def test_given_neurons_absent_from_the_labels_warn_and_stay():
    labels, table = tiny_volume()
    given = pd.DataFrame({"type": ["A", "B", "gone"], "nt": [None, None, "GABA"]}, index=[3, 9, 77])
    with pytest.warns(ConnectomeWarning, match="1 neurons of the given neuron table are not in the labels"):
        cx = connectome.from_segmentation(labels, table.iloc[:4], neurons=given)
    assert cx.neurons.loc[77, "size"] == 0 and cx.neurons.loc[77, "nt"] == "GABA"
    assert list(cx.report["neurons_not_in_labels"]) == [77]


def test_huge_label_ids_stay_exact_int64():
    labels, table = tiny_volume()
    big = np.where(labels == 3, 2**40 + 3, np.where(labels == 9, 2**62 + 9, 0)).astype(np.uint64)
    with pytest.warns(ConnectomeWarning):
        cx = connectome.from_segmentation(da.from_array(big, chunks=(2, 3, 3)), table)
    assert cx.edges["pre"].dtype == np.int64
    assert cx.edges[["pre", "post"]].values.tolist() == [[2**40 + 3, 2**62 + 9], [2**62 + 9, 2**40 + 3]]
    assert cx.neurons.loc[2**62 + 9, "size"] == int((labels == 9).sum())


def test_bad_labels_and_tables_are_named():
    labels, table = tiny_volume()
    with pytest.raises(ConnectomeError, match="3D"):
        connectome.from_segmentation(labels[0], table)
    with pytest.raises(ConnectomeError, match="integer"):
        connectome.from_segmentation(labels.astype(float), table)
    with pytest.raises(ConnectomeError, match="DataFrame"):
        connectome.from_segmentation(labels, table.to_numpy())


def test_progress_reaches_the_end():
    labels, table = tiny_volume()
    calls = []
    with pytest.warns(ConnectomeWarning):
        connectome.from_segmentation(da.from_array(labels, chunks=2), table, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (1000, 1000) and all(a[0] <= b[0] for a, b in itertools.pairwise(calls))
