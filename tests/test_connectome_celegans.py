"""The C. elegans sample: the counts c302's edge list reports, chemical and electrical apart."""

from __future__ import annotations

import sys

import pytest

from napari_wbe import connectome, connectome_celegans
from napari_wbe.connectome import ConnectomeError


@pytest.fixture(scope="module")
def worm():
    if connectome_celegans.installed_data_file() is None:
        pytest.skip("c302 is not installed (pip install --no-deps c302==0.12.1 provides its data file)")
    return connectome.celegans()


def test_counts_match_the_source(worm):
    chemical = worm.edges[worm.edges["kind"] == "chemical"]
    electrical = worm.edges[worm.edges["kind"] == "electrical"]
    assert len(worm.neurons) == 448
    assert len(chemical) == 4681 and chemical["syn_count"].sum() == 27019
    assert len(electrical) == 2698
    assert worm.neurons.index.dtype == "int64" and worm.neurons["name"].is_unique
    assert "c302" not in sys.modules  # its data file is read; its code (pyNeuroML...) is not run


def test_names_and_gap_junctions(worm):
    ids = dict(zip(worm.neurons["name"], worm.neurons.index))
    out = worm.partners(ids["AVAL"], kind="electrical")
    back = worm.partners(ids["AVAL"], direction="in", kind="electrical")
    # Gap junctions are listed once per direction, so AVAL's are the same both ways.
    assert set(out["partner"]) == set(back["partner"]) and len(out) > 0
    assert worm.edges["nt"].isna().all() and (worm.edges["sign"] == 0).all()


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(connectome_celegans, "installed_data_file", lambda: None)
    with pytest.raises(ConnectomeError, match=r"pip install --no-deps c302==0\.12\.1"):
        connectome.celegans()
    with pytest.raises(ConnectomeError, match="does not exist"):
        connectome.celegans("/nowhere/c302-0.12.1-py3-none-any.whl")
