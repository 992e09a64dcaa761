"""Queries on a small hand-made graph whose answers can be read off the drawing.

    1 --5--> 2 --4--> 3 --1--> 4        (chemical; 1 ACh, 2 GABA, 3 Glu)
    1 --2--> 3        4 --7--> 1
    2 ==4== 5  (electrical, listed both ways)      6: no synapses
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_wbe.connectome import Connectome, ConnectomeError


@pytest.fixture
def cx():
    neurons = pd.DataFrame({"type": ["A", "B", "B", "C", None, "C"],
                            "nt": ["ACh", "GABA", "Glu", "ACh", None, None]},
                           index=pd.Index([1, 2, 3, 4, 5, 6], name="neuron_id"))
    edges = pd.DataFrame({
        "pre": [1, 2, 3, 1, 4, 2, 5], "post": [2, 3, 4, 3, 1, 5, 2],
        "syn_count": [5, 4, 1, 2, 7, 4, 4],
        "nt": ["ACh", "GABA", "Glu", "ACh", "ACh", None, None],
        "sign": [1, -1, -1, 1, 1, 0, 0],
        "kind": ["chemical"] * 5 + ["electrical"] * 2,
    })
    return Connectome(neurons=neurons, edges=edges)


def test_partners_out_and_in_sorted_strongest_first(cx):
    out = cx.partners(1)
    assert out["partner"].tolist() == [2, 3] and out["syn_count"].tolist() == [5, 2]
    assert out["partner_type"].tolist() == ["B", "B"] and out["partner_nt"].tolist() == ["GABA", "Glu"]
    assert (out["pre"] == 1).all() and (out["nt"] == "ACh").all()
    inputs = cx.partners(2, direction="in")
    assert inputs["partner"].tolist() == [1, 5] and inputs["kind"].tolist() == ["chemical", "electrical"]
    assert cx.partners(1, min_syn=3)["partner"].tolist() == [2]
    assert cx.partners(2, kind="chemical")["partner"].tolist() == [3]
    assert cx.partners(6).empty and list(cx.partners(6).columns) == list(out.columns)


def test_partners_of_unknown_neurons_and_bad_arguments_are_named(cx):
    with pytest.raises(ConnectomeError, match="not in this connectome, e.g. 99"):
        cx.partners(99)
    with pytest.raises(ConnectomeError, match="direction"):
        cx.partners(1, direction="up")
    with pytest.raises(ConnectomeError, match="kind"):
        cx.partners(1, kind="gap")


def test_partners_index_follows_a_replaced_edge_table(cx):
    assert cx.partners(1)["partner"].tolist() == [2, 3]
    cx.edges = cx.edges[cx.edges["post"] != 2].reset_index(drop=True)
    assert cx.partners(1)["partner"].tolist() == [3]


def test_up_and_downstream_hops(cx):
    down = cx.downstream([1], hops=2)
    assert down.to_dict() == {2: 1, 3: 1, 4: 2}
    assert cx.downstream([1], hops=3).to_dict() == {2: 1, 3: 1, 4: 2, 1: 3}
    assert cx.downstream(1, hops=2, min_syn=3).to_dict() == {2: 1, 3: 2}
    assert cx.upstream([4], hops=2).to_dict() == {3: 1, 1: 2, 2: 2}
    assert cx.downstream([2], kind=None).to_dict() == {3: 1, 5: 1}
    with pytest.raises(ConnectomeError, match="hops"):
        cx.downstream([1], hops=0)


def test_shortest_path(cx):
    assert cx.shortest_path(1, 4) == [1, 3, 4]
    assert cx.shortest_path(1, 4, weighted=True) == [1, 2, 3, 4]  # 1/5 + 1/4 + 1 < 1/2 + 1
    assert cx.shortest_path(1, 4, min_syn=2) == []
    assert cx.shortest_path(2, 2) == [2]
    assert cx.shortest_path(1, 5) == [] and cx.shortest_path(1, 5, kind=None) == [1, 2, 5]


def test_adjacency(cx):
    matrix, ids = cx.adjacency()
    assert ids.tolist() == [1, 2, 3, 4, 5, 6] and ids.dtype == np.int64
    dense = matrix.toarray()
    assert dense[0, 1] == 5 and dense[3, 0] == 7 and dense.sum() == 19 and dense[1, 4] == 0
    signed = cx.adjacency(signed=True, min_syn=2)[0].toarray()
    assert signed[1, 2] == -4 and signed[2, 3] == 0 and signed.sum() == 5 - 4 + 2 + 7
    assert cx.adjacency(kind=None)[0].toarray()[1, 4] == 4


def test_type_matrix(cx):
    matrix = cx.type_matrix()
    assert list(matrix.index) == ["A", "B", "C"] and list(matrix.columns) == ["A", "B", "C"]
    assert matrix.loc["A", "B"] == 7 and matrix.loc["B", "B"] == 4 and matrix.loc["B", "C"] == 1
    assert matrix.loc["C", "A"] == 7 and matrix.values.sum() == 19
    assert cx.type_matrix(kind=None).loc["B", "untyped"] == 4
    assert cx.type_matrix(signed=True).loc["B", "B"] == -4
    with pytest.raises(ConnectomeError, match="no column 'cell_type'"):
        cx.type_matrix(by="cell_type")


def test_degrees_and_repr(cx):
    deg = cx.degrees()
    assert deg.loc[1].tolist() == [1, 2, 7, 7] and deg.loc[6].tolist() == [0, 0, 0, 0]
    assert "2 electrical" in repr(cx) and "27 synapses" in repr(cx)


def test_ids_beyond_int32_and_float_precision():
    big = 720575940_123_456_789
    edges = pd.DataFrame({"pre": [big, big + 1], "post": [big + 1, big], "syn_count": [3, 9]})
    cx = Connectome(edges=edges)
    assert cx.edges["sign"].tolist() == [0, 0] and cx.edges["kind"].tolist() == ["chemical"] * 2
    assert cx.partners(big, direction="in")["partner"].tolist() == [big + 1]
    assert cx.adjacency()[1].tolist() == [big, big + 1]


def test_bad_edge_tables_are_refused():
    with pytest.raises(ConnectomeError, match="lack the columns"):
        Connectome(edges=pd.DataFrame({"pre": [1], "post": [2]}))
    with pytest.raises(ConnectomeError, match="whole numbers"):
        Connectome(edges=pd.DataFrame({"pre": [1.5], "post": [2], "syn_count": [1]}))
    with pytest.raises(ConnectomeError, match="negative"):
        Connectome(edges=pd.DataFrame({"pre": [1], "post": [2], "syn_count": [-1]}))
