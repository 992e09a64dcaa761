"""Tests of the synthetic mini brain (napari_wbe.phantom); no display needed."""

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skimage.filters import window
from skimage.measure import label as connected_components
from skimage.registration import phase_cross_correlation

from napari_wbe import phantom
from napari_wbe.connectome import NT_SIGN, Connectome

SMALL = dict(n_neurons=12, shape=(24, 64, 64), n_channels=6)
# Digests of the outputs before imaging rounds, blur and fragments were added: the
# committed sample_data/ and every saved phantom depend on these staying the same.
DEFAULT_DIGEST = "1ac495858b79c6bb"  # mini_brain()
SAMPLE_DIGEST = "5494cd31d6f81b17"  # mini_brain(20, (24, 112, 112), 10, seed=0)


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
    # By default all tags are imaged in one unshifted round, with its reference stain.
    assert mb.round_of_channel.dtype == np.int64 and not mb.round_of_channel.any()
    np.testing.assert_array_equal(mb.round_shifts, np.zeros((1, 3)))
    assert mb.reference_image.shape == (1,) + shape and mb.reference_image.dtype == np.uint16


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


def _digest(mb):
    """A short hash of everything a phantom's users keep: images, truth and synapses."""
    h = hashlib.sha256()
    columns = [mb.synapses[c].to_numpy() for c in mb.synapses.columns if c != "nt"]
    for a in [mb.em, mb.labels, mb.barcode_image, mb.codebook, *columns,
              np.array(mb.synapses["nt"], dtype="U4")]:
        h.update(f"{a.dtype.str}{a.shape}".encode() + np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def test_default_output_does_not_change_by_accident(mb):
    # Update the digests (and regenerate sample_data/) only when the phantom is changed on purpose.
    assert _digest(mb) == DEFAULT_DIGEST
    sample = phantom.mini_brain(n_neurons=20, shape=(24, 112, 112), n_channels=10, seed=0)
    assert _digest(sample) == SAMPLE_DIGEST


def test_fragments_over_segment_the_neurons(mb):
    fragments, to_neuron = mb.fragments, mb.fragment_to_neuron
    assert fragments.shape == mb.labels.shape and fragments.dtype == np.uint32
    sizes = np.bincount(fragments.ravel())[1:]
    n = len(sizes)
    assert sizes.min() > 0, "ids 1..n, none missing"
    assert to_neuron.shape == (n + 1,) and to_neuron[0] == 0
    # A map from fragment to neuron that reproduces the truth: every neuron voxel is in
    # a fragment and every fragment lies inside one neuron (no false merges).
    np.testing.assert_array_equal(to_neuron[fragments], mb.labels)
    # Connected: one face-connected component per fragment.
    assert connected_components(fragments, background=0, connectivity=1).max() == n
    # Several pieces per neuron, mostly of about fragment_size voxels.
    assert n > 5 * len(mb.neurons)
    typical = np.median(np.repeat(sizes, sizes))  # the fragment of a typical voxel
    assert 0.5 * mb.fragment_size < typical < 2 * mb.fragment_size, typical
    assert mb.fragments is fragments, "computed once, then cached"
    # Ids follow space, not neurons, so they give nothing away.
    assert np.any(np.diff(to_neuron[1:].astype(np.int64)) < 0)


def test_oversegment_is_deterministic_and_follows_fragment_size(small):
    fine, fine_to_neuron = small.oversegment(300)
    again, _ = small.oversegment(300)
    np.testing.assert_array_equal(fine, again)
    np.testing.assert_array_equal(fine_to_neuron[fine], small.labels)
    coarse, _ = small.oversegment(3000)
    assert fine.max() > 2 * coarse.max()
    bigger = phantom.mini_brain(**SMALL, seed=3, fragment_size=300)
    np.testing.assert_array_equal(bigger.fragments, fine)


def test_round_structure():
    mb = phantom.mini_brain(**dict(SMALL, n_channels=10), tags_per_round=4, round_shift=2.0)
    np.testing.assert_array_equal(mb.round_of_channel, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    assert mb.round_shifts.shape == (3, 3) and mb.round_shifts.dtype == np.float64
    np.testing.assert_array_equal(mb.round_shifts[0], 0.0)
    assert np.all(np.abs(mb.round_shifts[:, 1:]) <= 2.0)
    assert np.all(np.abs(mb.round_shifts[:, 0]) <= 2.0 / 3)
    assert np.any(mb.round_shifts[1:] != np.rint(mb.round_shifts[1:])), "sub-voxel shifts"
    assert mb.reference_image.shape == (3, 24, 64, 64)
    assert mb.reference_image.dtype == np.uint16


def test_reference_stains_every_neuron_and_dims_membranes():
    mb = phantom.mini_brain(**SMALL, seed=1, noise=0.0, dropout=0.0, blur=0.0)
    reference, labels = mb.reference_image[0].astype(np.float64), mb.labels
    background = np.median(reference[labels == 0])
    means = np.bincount(labels.ravel(), weights=reference.ravel())[1:] / mb.neurons["n_voxels"]
    assert np.all(means > background + 200)
    assert means.std() > 0.05 * means.mean(), "cells differ in how bright they stain"
    boundary = np.zeros(labels.shape, bool)
    boundary[:, :, :-1] |= labels[:, :, :-1] != labels[:, :, 1:]
    boundary[:, :, 1:] |= labels[:, :, :-1] != labels[:, :, 1:]
    one_cell = labels == np.argmax(mb.neurons["n_voxels"].to_numpy()) + 1
    assert reference[one_cell & boundary].mean() < reference[one_cell & ~boundary].mean()


def _registered_shift(fixed, moving):
    """The shift that carries `fixed` onto `moving`, by windowed cross-correlation (the
    window stops the volume edges from pulling the estimate to zero)."""
    taper = window("hann", fixed.shape)
    fixed, moving = (taper * (a - a.mean()) for a in (fixed.astype(float), moving.astype(float)))
    shift, _, _ = phase_cross_correlation(fixed, moving, upsample_factor=20, normalization=None)
    return -shift


def test_reference_rounds_register_to_the_true_shifts():
    mb = phantom.mini_brain(**SMALL, seed=2, tags_per_round=2, round_shift=3.0)
    assert np.abs(mb.round_shifts[1:, 1:]).max() > 1.0, "a real drift to recover"
    for r in (1, 2):
        found = _registered_shift(mb.reference_image[0], mb.reference_image[r])
        np.testing.assert_allclose(found, mb.round_shifts[r], atol=0.5)


def test_tags_move_with_their_round():
    # Without noise, the same brain imaged with and without drift differs by the shifts.
    kwargs = dict(**SMALL, seed=2, tags_per_round=2, noise=0.0)
    still = phantom.mini_brain(**kwargs)
    drifted = phantom.mini_brain(**kwargs, round_shift=3.0)
    np.testing.assert_array_equal(still.labels, drifted.labels)
    np.testing.assert_array_equal(drifted.barcode_image[:2], still.barcode_image[:2])
    for channel in range(2, 6):
        shift = drifted.round_shifts[drifted.round_of_channel[channel]]
        found = _registered_shift(still.barcode_image[channel], drifted.barcode_image[channel])
        np.testing.assert_allclose(found, shift, atol=0.5)


def test_blur_and_dropout_are_honoured():
    sharp = phantom.mini_brain(**SMALL, noise=0.0, dropout=0.0, blur=0.0)
    inside = sharp.labels > 0
    expressing = sharp.codebook[:, 0][sharp.labels[inside] - 1]
    tag = sharp.barcode_image[0][inside]
    # Unblurred and noiseless: one flat level per neuron, never darker than background.
    assert len(np.unique(tag)) <= len(sharp.neurons) + 1
    assert np.all(tag[expressing] > tag[~expressing].max())
    blurred = phantom.mini_brain(**SMALL, noise=0.0, dropout=0.0, blur=2.0)
    assert len(np.unique(blurred.barcode_image[0][inside])) > 10 * len(sharp.neurons)
    punctate = phantom.mini_brain(**SMALL, noise=0.0, dropout=0.5, blur=0.0)
    dark = punctate.barcode_image[0][inside][expressing] <= tag[~expressing].max()
    assert 0.45 < dark.mean() < 0.55


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
        (dict(blur=-1.0), "blur"),
        (dict(tags_per_round=0), "tags_per_round"),
        (dict(tags_per_round=2.5), "tags_per_round"),
        (dict(round_shift=-0.5), "round_shift"),
        (dict(round_shift=float("nan")), "round_shift"),
        (dict(fragment_size=0), "fragment_size"),
        (dict(fragment_size=1.5), "fragment_size"),
    ],
)
def test_bad_input_is_named(kwargs, words):
    with pytest.raises(ValueError, match=words):
        phantom.mini_brain(**kwargs)


def test_error_messages_say_how_to_fix(small):
    with pytest.raises(ValueError, match=r"\(0, 1\]; got expression_p=0"):
        phantom.mini_brain(expression_p=0)
    with pytest.raises(ValueError, match=r"e\.g\. \(48, 192, 192\)"):
        phantom.mini_brain(shape=(1, 2, 3))
    with pytest.raises(ValueError, match=r">= 1, or None \(all tags in one round\); got"):
        phantom.mini_brain(tags_per_round=0)
    with pytest.raises(ValueError, match=r"fragment_size must be a whole number >= 1"):
        small.oversegment(0)


def test_imports_neither_qt_nor_napari():
    code = (
        "import sys, napari_wbe.phantom; "
        "gui = {'napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6'}; "
        "bad = [m for m in sys.modules if m.split('.')[0] in gui]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
