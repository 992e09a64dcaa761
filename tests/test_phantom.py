"""Tests of the synthetic mini brain (napari_wbe.phantom); no display needed."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_wbe import phantom
from napari_wbe.connectome import NT_SIGN, Connectome

SMALL = dict(n_neurons=12, shape=(24, 64, 64), n_channels=6)


@pytest.fixture(scope="module")
def mb():
    """The default mini brain, built once for the whole module."""
    return phantom.mini_brain()


@pytest.fixture(scope="module")
def small():
    return phantom.mini_brain(**SMALL, seed=3)


def test_shapes_and_dtypes(mb):
    shape = (48, 192, 192)
    assert mb.labels.shape == shape and mb.labels.dtype == np.uint32
    assert mb.em.shape == shape and mb.em.dtype == np.uint8
    assert mb.barcode_image.shape == (18,) + shape and mb.barcode_image.dtype == np.uint16
    assert mb.codebook.shape == (40, 18) and mb.codebook.dtype == bool
    assert isinstance(mb.connectome, Connectome)
    assert mb.voxel_size == (8.0, 8.0, 8.0)
    assert mb.expansion_factor == 4.0 and mb.barcode_voxel_size == (32.0, 32.0, 32.0)
    assert len(mb.channel_names) == 18
    assert "MiniBrain" in repr(mb) and "40 neurons" in repr(mb)


def test_every_neuron_present_and_volume_is_dense(mb):
    ids = np.unique(mb.labels)
    assert ids[0] == 0
    np.testing.assert_array_equal(ids[1:], np.arange(1, 41))
    fill = np.count_nonzero(mb.labels) / mb.labels.size
    assert 0.35 < fill < 0.8, fill


def test_a_neuron_painted_over_gets_its_anchor_voxel_back():
    from napari_wbe import phantom_geometry

    labels = np.zeros((8, 8, 8), np.uint32)
    labels[:4], labels[4:] = 1, 2  # neuron 3 lost every voxel
    anchors = np.array([[8.0, 8, 8], [40, 40, 40], [20, 20, 20]])
    phantom_geometry._guarantee_every_neuron(labels, anchors, np.array([8.0, 8, 8]))
    assert labels[2, 2, 2] == 3
    np.testing.assert_array_equal(np.unique(labels), [1, 2, 3])


def test_neuron_table(mb):
    neurons = mb.neurons
    assert neurons.index.name == "neuron_id" and neurons.index.dtype == np.int64
    np.testing.assert_array_equal(neurons.index, np.arange(1, 41))
    assert set(neurons["nt"]) <= set(phantom.NT_PROBABILITIES)
    assert set(neurons["cell_type"]) <= set(phantom.CELL_TYPES)
    counts = np.bincount(mb.labels.ravel(), minlength=41)[1:]
    np.testing.assert_array_equal(neurons["n_voxels"].to_numpy(), counts)
    bits = np.array([[c == "1" for c in code] for code in neurons["barcode"]])
    np.testing.assert_array_equal(bits, mb.codebook)
    assert mb.codebook.any(axis=1).all(), "every neuron expresses at least one tag"


def test_nt_frequencies_follow_the_model():
    # The identity draw alone: a full phantom of this many neurons would be slow.
    neurons, codebook, _ = phantom._neuron_identities(np.random.default_rng(1), 3000, 4, 0.35)
    counts = neurons["nt"].value_counts()
    assert counts["ACh"] > counts["GABA"] > counts["Glu"] > counts["DA"] + counts["OA"]
    assert codebook.any(axis=1).all()
    assert abs(codebook.mean() - 0.35) < 0.1


def test_same_seed_same_bytes_and_threads_do_not_matter(small):
    again = phantom.mini_brain(**SMALL, seed=3, workers=1)
    for name in ("labels", "em", "barcode_image", "codebook"):
        assert np.array_equal(getattr(small, name), getattr(again, name)), name
    pd.testing.assert_frame_equal(small.synapses, again.synapses)
    pd.testing.assert_frame_equal(small.neurons, again.neurons)
    pd.testing.assert_frame_equal(small.connectome.edges, again.connectome.edges)


def test_different_seed_differs(small):
    other = phantom.mini_brain(**SMALL, seed=4)
    assert not np.array_equal(small.labels, other.labels)
    assert not np.array_equal(small.em, other.em)
    assert not np.array_equal(small.barcode_image, other.barcode_image)


def test_synapses_sit_in_their_neurons_at_contacts(mb):
    syn = mb.synapses
    assert len(syn) > 100
    expected = ["pre_z", "pre_y", "pre_x", "post_z", "post_y", "post_x", "pre", "post", "nt",
                "confidence"]
    assert list(syn.columns) == expected
    for col in expected[:8]:
        assert syn[col].dtype == np.int64, col
    pre_at = mb.labels[syn["pre_z"], syn["pre_y"], syn["pre_x"]]
    post_at = mb.labels[syn["post_z"], syn["post_y"], syn["post_x"]]
    np.testing.assert_array_equal(pre_at, syn["pre"])
    np.testing.assert_array_equal(post_at, syn["post"])
    assert (syn["pre"] != syn["post"]).all() and (syn["pre"] > 0).all() and (syn["post"] > 0).all()
    pre_xyz = syn[["pre_z", "pre_y", "pre_x"]].to_numpy()
    post_xyz = syn[["post_z", "post_y", "post_x"]].to_numpy()
    assert (np.abs(pre_xyz - post_xyz).sum(axis=1) <= 2).all(), "synapses sit at contacts"
    assert ((syn["confidence"] > 0.5) & (syn["confidence"] <= 1.0)).all()
    np.testing.assert_array_equal(syn["nt"], mb.neurons.loc[syn["pre"], "nt"])
    # One synapse per contact face, never two at the same spot.
    assert not syn.duplicated(["pre_z", "pre_y", "pre_x", "post_z", "post_y", "post_x"]).any()


def test_synapse_counts_are_heavy_tailed(mb):
    counts = mb.connectome.edges["syn_count"]
    assert counts.min() >= 1
    assert counts.max() >= 4 * counts.median()


def test_connectome_is_the_synapse_table_grouped(mb):
    edges = mb.connectome.edges
    grouped = mb.synapses.groupby(["pre", "post"]).size().rename("syn_count").reset_index()
    pd.testing.assert_frame_equal(
        edges[["pre", "post", "syn_count"]].reset_index(drop=True), grouped,
        check_dtype=False,
    )
    assert edges["syn_count"].sum() == len(mb.synapses)
    assert edges["sign"].dtype == np.int8
    np.testing.assert_array_equal(edges["nt"], mb.neurons.loc[edges["pre"], "nt"])
    np.testing.assert_array_equal(edges["sign"], [NT_SIGN[t] for t in edges["nt"]])
    pd.testing.assert_frame_equal(mb.connectome.neurons, mb.neurons)


def test_barcode_image_shows_the_codebook(mb):
    image = mb.barcode_image.astype(np.float64)
    ids = np.arange(1, 41)
    flat_labels = mb.labels.ravel()
    sums = np.stack(
        [np.bincount(flat_labels, weights=ch.ravel(), minlength=41)[1:] for ch in image]
    )
    means = (sums / mb.neurons["n_voxels"].to_numpy()).T  # (neurons, channels)
    background = np.median(image[:, mb.labels == 0], axis=1)
    contrast = means / background
    # Each neuron: every expressed tag clearly brighter than every unexpressed one on average.
    for i in range(len(ids)):
        on, off = contrast[i, mb.codebook[i]], contrast[i, ~mb.codebook[i]]
        if off.size:
            assert on.mean() > 2.0 * off.mean(), (i + 1, on, off)
    assert contrast[mb.codebook].mean() > 3 * contrast[~mb.codebook].mean()


def test_barcode_thresholding_is_noisy_but_codewords_decode(mb):
    """Naive per-voxel thresholding gets many voxels wrong; the nearest codeword of the
    normalised intensities gets most right (the decoders build on this)."""
    inside = mb.labels > 0
    values = mb.barcode_image[:, inside].astype(np.float32).T  # (voxels, channels)
    background = np.median(mb.barcode_image[:, ~inside], axis=1)
    bright = np.percentile(values, 90, axis=0)
    normalised = (values - background) / (bright - background)
    truth = mb.codebook[mb.labels[inside] - 1]
    exact = ((normalised > 0.5) == truth).all(axis=1).mean()
    assert exact < 0.8, exact
    codes = mb.codebook / np.linalg.norm(mb.codebook, axis=1, keepdims=True)
    nearest = np.argmax(normalised @ codes.T, axis=1) + 1
    assert (nearest == mb.labels[inside]).mean() > 0.85


def test_em_membranes_darker_than_cytoplasm(mb):
    labels, em = mb.labels, mb.em.astype(np.float64)
    boundary = np.zeros(labels.shape, bool)
    boundary[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    boundary[:, 1:] |= labels[:, :-1] != labels[:, 1:]
    cells = (labels > 0) & ~boundary
    outside = (labels == 0) & ~boundary
    assert em[boundary].mean() < em[cells].mean() - 30
    assert em[outside].mean() < em[cells].mean() - 15
    assert em.std() > 10, "textured, not flat"


def test_anisotropy_makes_z_coarser():
    mb = phantom.mini_brain(**SMALL, seed=0, anisotropy=4.0, voxel_size=(5.0, 6.0, 7.0))
    assert mb.voxel_size == (20.0, 6.0, 7.0)
    assert mb.barcode_voxel_size == (80.0, 24.0, 28.0)
    np.testing.assert_array_equal(np.unique(mb.labels)[1:], np.arange(1, 13))


def test_float32_barcodes_and_no_noise():
    mb = phantom.mini_brain(**SMALL, barcode_dtype="float32", noise=0.0, dropout=0.0)
    assert mb.barcode_image.dtype == np.float32
    # Without noise the background is one flat level per channel far from any cell.
    assert mb.barcode_image.min() > 0


def test_progress_reports_to_the_end():
    seen = []
    phantom.mini_brain(**SMALL, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (1000, 1000) and seen == sorted(seen)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(n_neurons=0), "n_neurons"),
        (dict(n_neurons=2.5), "n_neurons"),
        (dict(n_neurons=True), "n_neurons"),
        (dict(shape=(48, 192)), "shape"),
        (dict(shape=(48, -1, 192)), "shape"),
        (dict(shape="big"), "shape"),
        (dict(n_neurons=10_000, shape=(16, 32, 32)), "do not fit"),
        (dict(n_channels=0), "n_channels"),
        (dict(expression_p=0.0), "expression_p"),
        (dict(expression_p=1.5), "expression_p"),
        (dict(anisotropy=0.0), "anisotropy"),
        (dict(anisotropy=-2), "anisotropy"),
        (dict(anisotropy="2"), "anisotropy"),
        (dict(voxel_size=(8, 8)), "voxel_size"),
        (dict(dropout=1.0), "dropout"),
        (dict(noise=-1), "noise"),
        (dict(expansion_factor=0), "expansion_factor"),
        (dict(seed=-1), "seed"),
        (dict(barcode_dtype="int8"), "barcode_dtype"),
        (dict(workers=0), "workers"),
        (dict(progress="yes"), "progress"),
    ],
)
def test_bad_input_is_named(kwargs, words):
    with pytest.raises(ValueError, match=words):
        phantom.mini_brain(**kwargs)


def test_error_messages_say_how_to_fix():
    with pytest.raises(ValueError, match=r"\(0, 1\]; got expression_p=0"):
        phantom.mini_brain(expression_p=0)
    with pytest.raises(ValueError, match=r"e\.g\. \(48, 192, 192\)"):
        phantom.mini_brain(shape=(1, 2, 3))


def test_imports_neither_qt_nor_napari():
    code = (
        "import sys, napari_wbe.phantom; "
        "gui = {'napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6'}; "
        "bad = [m for m in sys.modules if m.split('.')[0] in gui]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
