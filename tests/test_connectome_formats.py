"""Connectome files: every format round-trips, ids stay int64, bad files are named."""

from __future__ import annotations

import gzip
import os
import warnings

import numpy as np
import pandas as pd
import pytest

from napari_wbe import connectome
from napari_wbe.connectome import Connectome, ConnectomeError, ConnectomeWarning
from napari_wbe.phantom import mini_brain

ROOT = 720575940_600_000_000  # FlyWire-sized: beyond int32, beyond float64's exact integers


def big_id(i: int) -> int:
    return ROOT + 1_000_003 * i


@pytest.fixture(scope="module")
def phantom_cx():
    mb = mini_brain(n_neurons=24, shape=(24, 96, 96), seed=3)
    given = pd.DataFrame({"type": mb.neurons["cell_type"], "barcode": mb.neurons["barcode"]})
    cx = connectome.from_segmentation(mb.labels, mb.synapses, neurons=given)
    # FlyWire-sized ids, so every format shows it keeps them exact.
    relabel = {i: big_id(i) for i in cx.neurons.index}
    edges = cx.edges.assign(pre=cx.edges["pre"].map(relabel), post=cx.edges["post"].map(relabel))
    return Connectome(neurons=cx.neurons.rename(index=relabel), edges=edges, report=cx.report)


@pytest.fixture
def mixed_cx():
    """Chemical and electrical edges, an unvoted neuron, big ids."""
    ids = [big_id(i) for i in range(4)]
    edges = pd.DataFrame({"pre": [ids[0], ids[1], ids[2], ids[3]], "post": [ids[1], ids[2], ids[3], ids[2]],
                          "syn_count": [4, 2, 1, 1], "nt": ["ACh", "GABA", None, None], "sign": [1, -1, 0, 0],
                          "kind": ["chemical", "chemical", "electrical", "electrical"]})
    return Connectome(neurons=pd.DataFrame(index=pd.Index(ids)), edges=edges)


def no_temporaries(folder) -> bool:
    return not [f for f in os.listdir(folder) if "tmp-" in f or ".old-" in f]


def test_parquet_folder_round_trips_everything(phantom_cx, tmp_path):
    path = phantom_cx.write(tmp_path / "brain.connectome")
    assert connectome.guess_format(path) == "parquet"
    again = connectome.read(path)
    pd.testing.assert_frame_equal(again.neurons, phantom_cx.neurons)
    pd.testing.assert_frame_equal(again.edges, phantom_cx.edges)
    assert again.report["counted"] == phantom_cx.report["counted"]
    phantom_cx.write(path)  # overwriting swaps the folder whole
    assert connectome.read(path).equals(phantom_cx) and no_temporaries(tmp_path)


def test_codex_round_trips_with_its_neuron_table(phantom_cx, tmp_path):
    # CSV keeps no types: text of digits only (the barcode) would come back as numbers.
    phantom_cx = Connectome(phantom_cx.neurons.drop(columns="barcode"), phantom_cx.edges)
    path = phantom_cx.write(tmp_path / "connections.csv")
    header = pd.read_csv(path, nrows=0).columns.tolist()
    assert header == ["pre_root_id", "post_root_id", "neuropil", "syn_count", "nt_type"]
    assert (tmp_path / "neurons.csv").exists() and connectome.guess_format(path) == "codex"
    assert set(pd.read_csv(path)["nt_type"]) <= {"ACH", "GABA", "GLUT", "SER", "OCT", "DA"}
    again = connectome.read(path)
    pd.testing.assert_frame_equal(again.edges, phantom_cx.edges)
    pd.testing.assert_frame_equal(again.neurons, phantom_cx.neurons)
    assert connectome.read(tmp_path).equals(again) and no_temporaries(tmp_path)


def test_codex_download_layout_is_read(tmp_path):
    a, b, c = big_id(1), big_id(2), big_id(3)
    rows = pd.DataFrame({"pre_root_id": [a, a, a, b, b, a], "post_root_id": [b, b, c, c, c, b],
                         "neuropil": ["AL_L", "LH_L", "LH_L", "MB_CA_R", "MB_CA_R", "AL_L"],
                         "syn_count": [6, 9, 5, 7, 2, 1], "nt_type": ["ACH", "ACH", "ACH", "GLUT", "GLUT", "ACH"]})
    with gzip.open(tmp_path / "connections.csv.gz", "wt") as f:
        rows.to_csv(f, index=False)
    pd.DataFrame({"root_id": [a, b, c], "group": ["g1", "g2", "g3"], "nt_type": ["ACH", "GLUT", "GABA"]}) \
        .to_csv(tmp_path / "neurons.csv", index=False)
    pd.DataFrame({"root_id": [c, a], "super_class": ["central", "sensory"], "cell_type": ["KC", None]}) \
        .to_csv(tmp_path / "classification.csv", index=False)
    with pytest.warns(ConnectomeWarning, match="2 rows repeat"):
        cx = connectome.read(tmp_path)
    edges = cx.edges.set_index(["pre", "post"])
    assert edges.loc[(a, b), "syn_count"] == 16 and edges.loc[(a, b), "neuropil"] == "LH_L"
    assert edges.loc[(b, c), "syn_count"] == 9 and edges.loc[(b, c), "nt"] == "Glu"
    assert edges.loc[(b, c), "sign"] == -1 and cx.report["source_rows"] == 6
    assert cx.neurons.index.tolist() == [a, b, c] and cx.neurons["nt"].tolist() == ["ACh", "Glu", "GABA"]
    assert cx.neurons.loc[c, "type"] == "KC" and cx.neurons.loc[a, "super_class"] == "sensory"


def test_shiu_files_round_trip_in_the_model_layout(tmp_path):
    ids = [big_id(i) for i in (5, 1, 9)]  # the model's neuron order is the file's, not sorted
    neurons = pd.DataFrame({"completed": [True, False, True]}, index=pd.Index(ids))
    edges = pd.DataFrame({"pre": [ids[0], ids[2], ids[1]], "post": [ids[1], ids[0], ids[2]],
                          "syn_count": [12, 5, 30], "sign": [1, -1, 1]})
    cx = Connectome(neurons=neurons, edges=edges)
    path = cx.write(tmp_path, format="shiu", tag="783")
    assert os.path.basename(path) == "Connectivity_783.parquet"
    comp = pd.read_csv(tmp_path / "Completeness_783.csv", index_col=0)
    assert comp.index.tolist() == ids and comp.columns.tolist() == ["Completed"]
    con = pd.read_parquet(path)
    assert con.columns.tolist() == ["Presynaptic_ID", "Postsynaptic_ID", "Presynaptic_Index", "Postsynaptic_Index",
                                    "Connectivity", "Excitatory", "Excitatory x Connectivity"]
    assert con["Presynaptic_Index"].tolist() == [0, 2, 1] and con["Excitatory x Connectivity"].tolist() == [12, -5, 30]
    again = connectome.read(tmp_path)
    assert again.equals(cx) and again.edges["nt"].isna().all()
    assert connectome.read(tmp_path / "Completeness_783.csv").equals(cx)


def test_shiu_files_that_disagree_are_refused(tmp_path):
    cx = Connectome(neurons=pd.DataFrame(index=[1, 2]), edges=pd.DataFrame({"pre": [1], "post": [2], "syn_count": [3]}))
    path = cx.write(tmp_path, format="shiu")
    con = pd.read_parquet(path)
    con["Presynaptic_Index"] = [1]
    con.to_parquet(path)
    with pytest.raises(ConnectomeError, match="different versions"):
        connectome.read(path)


def test_edge_list_round_trips_chemical_and_electrical(mixed_cx, tmp_path):
    path = mixed_cx.write(tmp_path / "edges.csv")
    assert pd.read_csv(path).columns.tolist()[:4] == ["source", "target", "weight", "type"]
    again = connectome.read(path)
    assert again.equals(mixed_cx) and again.edges["pre"].dtype == np.int64
    assert again.edges["pre"].tolist()[0] == big_id(0)


def test_edge_list_with_names_and_duplicates(tmp_path):
    (tmp_path / "worm.csv").write_text("Source,Target,Weight,Type\nAVAL , AVAR ,3,chemical\n"
                                       "AVAR,AVAL,1,GapJunction\nAVAL,AVAR,2,chemical\nAVBL,AVAL,1,chemical\n")
    with pytest.warns(ConnectomeWarning, match="1 rows repeat an earlier row's pre, post, kind"):
        cx = connectome.read(tmp_path / "worm.csv")
    assert cx.neurons["name"].tolist() == ["AVAL", "AVAR", "AVBL"] and cx.neurons.index.tolist() == [1, 2, 3]
    assert cx.edges[["pre", "post", "syn_count", "kind"]].values.tolist() == [
        [1, 2, 5, "chemical"], [2, 1, 1, "electrical"], [3, 1, 1, "chemical"]]
    (tmp_path / "bad.csv").write_text("source,target,weight,type\n1,2,3,hormonal\n")
    with pytest.raises(ConnectomeError, match="hormonal"):
        connectome.read(tmp_path / "bad.csv")


def test_duplicates_in_our_own_folder_and_shiu_files_are_summed(tmp_path):
    cx = Connectome(edges=pd.DataFrame({"pre": [1, 2], "post": [2, 1], "syn_count": [3, 4]}))
    folder = cx.write(tmp_path / "dup.connectome")
    pd.concat([cx.edges, cx.edges.iloc[:1]]).to_parquet(os.path.join(folder, "edges.parquet"))
    with pytest.warns(ConnectomeWarning, match="1 rows repeat"):
        assert connectome.read(folder).edges["syn_count"].tolist() == [6, 4]
    path = cx.write(tmp_path / "shiu", format="shiu")
    con = pd.read_parquet(path)
    pd.concat([con, con]).to_parquet(path)
    with pytest.warns(ConnectomeWarning, match="2 rows repeat"):
        assert connectome.read(path).edges["syn_count"].tolist() == [6, 8]


def test_chemical_only_formats_refuse_gap_junctions(mixed_cx, tmp_path):
    for fmt in ("codex", "shiu"):
        with pytest.raises(ConnectomeError, match="chemical synapses only"):
            mixed_cx.write(tmp_path / fmt, format=fmt)
    assert not os.listdir(tmp_path) or not any(os.listdir(tmp_path / d) for d in os.listdir(tmp_path))


def test_unknown_formats_list_the_known_ones(tmp_path):
    (tmp_path / "weird.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ConnectomeError, match="(?s)codex.*shiu.*edgelist") as err:
        connectome.read(tmp_path / "weird.csv")
    assert "parquet" in str(err.value)
    with pytest.raises(ConnectomeError, match="Pass format="):
        connectome.write(Connectome(), tmp_path / "out.xlsx")
    with pytest.raises(ConnectomeError, match="does not exist"):
        connectome.read(tmp_path / "nothing.csv")
    with pytest.raises(ConnectomeError, match="format='hdf5' is not one of"):
        connectome.read(tmp_path / "weird.csv", format="hdf5")


def test_ids_are_never_floats(tmp_path):
    (tmp_path / "connections.csv").write_text("pre_root_id,post_root_id,syn_count\n720575940600000001,,3\n")
    with pytest.raises(ConnectomeError, match="whole numbers with no blanks"):
        connectome.read(tmp_path / "connections.csv")


def test_unknown_transmitters_in_a_file_warn(tmp_path):
    (tmp_path / "connections.csv").write_text("pre_root_id,post_root_id,syn_count,nt_type\n1,2,3,HIST\n")
    with pytest.warns(ConnectomeWarning, match="HIST"):
        cx = connectome.read(tmp_path / "connections.csv")
    assert cx.edges["sign"].tolist() == [0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert connectome.read(tmp_path / "connections.csv", nt_sign={"HIST": -1}).edges["sign"].tolist() == [-1]


def test_read_a_project_folder(tmp_path):
    from napari_wbe import connectome
    from napari_wbe.phantom import mini_brain
    from napari_wbe.project import Project, save_project

    mb = mini_brain(n_neurons=10, shape=(16, 64, 64), seed=0)
    save_project(Project(labels={"neurons": mb.labels}, features={"neurons": mb.neurons},
                         tables={"edges": mb.connectome.edges}, voxel_size=mb.voxel_size), tmp_path / "b.wbe")
    cx = connectome.read(tmp_path / "b.wbe")
    assert cx.edges["syn_count"].sum() == mb.connectome.edges["syn_count"].sum()
    assert list(cx.neurons.index) == list(mb.neurons.index)
