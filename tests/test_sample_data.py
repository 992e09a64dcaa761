"""sample_data/ matches what its script makes from the phantom (regenerate it if not)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_wbe.phantom import mini_brain
from napari_wbe.project import open_project

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("make_sample_data", SAMPLE / "make_sample_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def truth(script):
    return mini_brain(n_neurons=script.N_NEURONS, shape=script.SHAPE, n_channels=script.N_CHANNELS, seed=0)


def test_sample_project_is_the_phantom(truth):
    project = open_project(SAMPLE / "mini_brain.wbe")
    np.testing.assert_array_equal(project.labels["neurons"].levels[0].compute(), truth.labels)
    np.testing.assert_array_equal(project.images["em"].levels[0].compute(), truth.em)
    exm = project.images["exm"]
    assert exm.axes == "czyx" and exm.kind == "exm"
    np.testing.assert_array_equal(exm.levels[0].compute(), truth.barcode_image)
    assert len(project.tables["synapses"]) == len(truth.synapses)
    assert list(project.features["neurons"].index) == list(truth.neurons.index)


def test_codebook_and_edge_list(script, truth):
    codebook = pd.read_csv(SAMPLE / "codebook.csv")
    assert list(codebook.columns[:2]) == ["name", "id"]
    np.testing.assert_array_equal(codebook.filter(like="bit").to_numpy().astype(bool), truth.codebook)
    edges = pd.read_csv(SAMPLE / "edges.csv")
    assert list(edges.columns) == ["source", "target", "weight", "type"]
    assert edges["weight"].sum() == len(truth.synapses)


def test_sample_data_stays_small():
    total = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert total < 8 * 2**20
