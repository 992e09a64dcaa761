"""Barcode decoding on the mini-brain phantom: accuracy, learning, chunking, bad input."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from skimage.metrics import adapted_rand_error

from napari_wbe import barcodes
from napari_wbe.barcode_codebook import Codebook, CodebookError
from napari_wbe.barcode_learning import learn_unexplained, learning_sample, register_rounds
from napari_wbe.phantom import mini_brain


@pytest.fixture(scope="module")
def mb():
    return mini_brain(n_neurons=30, shape=(32, 128, 128), n_channels=12, seed=2)


@pytest.fixture(scope="module")
def decoded(mb):
    return barcodes.decode(mb.barcode_image, codebook=mb.codebook)


def voxels_right(labels: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of true foreground voxels whose label's majority neuron is theirs."""
    fg = truth > 0
    pairs, counts = np.unique(np.stack([labels[fg], truth[fg]]), axis=1, return_counts=True)
    order = np.lexsort((-counts, pairs[0]))
    first = order[np.r_[True, pairs[0][order][1:] != pairs[0][order][:-1]]]
    majority = np.zeros(int(labels.max()) + 1, np.int64)
    majority[pairs[0][first]] = pairs[1][first]
    majority[0] = -1
    return float((majority[labels] == truth)[fg].mean())


def test_decoding_with_the_true_codebook(mb, decoded):
    assert decoded.labels.dtype == np.uint32 and decoded.labels.shape == mb.labels.shape
    assert voxels_right(decoded.labels, mb.labels) > 0.93
    assert list(decoded.table.columns) == ["label", "barcode", "code_index", "name", "n_voxels", "mean_confidence",
                                           "n_pieces", "z", "y", "x"]
    inside = decoded.table[["z", "y", "x"]].to_numpy()
    assert (decoded.labels[tuple(inside.T)] == decoded.table["label"].to_numpy()).all()
    assert decoded.table["label"].tolist() == list(range(1, len(decoded.table) + 1))
    sizes = np.bincount(decoded.labels.ravel())[1:]
    np.testing.assert_array_equal(sizes, decoded.table["n_voxels"])
    assert 0 <= decoded.confidence.min() and decoded.confidence.max() <= 1.0001
    assert decoded.report["n_codes"] == 30 and decoded.report["expected_cells_sharing_a_code"] < 1


def test_learned_codebook_finds_the_cells(mb):
    res = barcodes.decode(mb.barcode_image)
    learned = {tuple(row) for row in res.codebook.codes}
    big = np.bincount(mb.labels.ravel(), minlength=31)[1:] >= 500
    found = [tuple(mb.codebook[i]) in learned for i in np.flatnonzero(big)]
    assert np.mean(found) >= 0.9
    assert len(learned - {tuple(row) for row in mb.codebook}) <= 2
    assert voxels_right(res.labels, mb.labels) > 0.9


def test_cell_edges_follow_each_cells_own_profile(mb, decoded):
    """A global brightness threshold low enough for dim cells lets bright cells spill far into
    the background; edges set at a share of each cell's own profile keep less than half of
    that, at a cost of well under 1% of the voxels right."""
    decoder = barcodes.Decoder(mb.barcode_image, codebook=mb.codebook)
    assert decoder.settings.edge_share == 0.4
    threshold_only = decoder.with_options(edge_share=0.0).run()
    background = mb.labels == 0
    spill = (threshold_only.labels[background] > 0).mean()
    assert (decoded.labels[background] > 0).mean() < 0.5 * spill
    assert voxels_right(decoded.labels, mb.labels) > voxels_right(threshold_only.labels, mb.labels) - 0.005


def test_chunked_run_equals_in_memory_run(mb, decoded, tmp_path):
    image = da.from_array(mb.barcode_image, chunks=(12, 16, 64, 64))
    chunked = barcodes.decode(image, codebook=mb.codebook, chunks=(16, 48, 48))  # 2 x 3 x 3 blocks
    np.testing.assert_array_equal(chunked.labels, decoded.labels)
    np.testing.assert_array_equal(chunked.confidence, decoded.confidence)
    assert chunked.table.equals(decoded.table)
    on_disk = barcodes.decode(image, codebook=mb.codebook, chunks=(16, 48, 48), out=tmp_path / "labels.ome.zarr")
    assert isinstance(on_disk.labels, da.Array)
    np.testing.assert_array_equal(on_disk.labels.compute(), decoded.labels)
    assert (tmp_path / "labels-confidence.ome.zarr").is_dir()


def test_identity_by_code_joins_pieces_of_one_code(mb, decoded):
    by_code = barcodes.decode(mb.barcode_image, codebook=mb.codebook, identity="code")
    assert len(by_code.table) <= len(decoded.table)
    assert by_code.table["code_index"].is_unique


def test_threshold_decoder_runs_like_the_prism_analysis(mb):
    res = barcodes.decode(mb.barcode_image, codebook=mb.codebook, method="threshold")
    assert voxels_right(res.labels, mb.labels) > 0.6  # far below "metric": why metric is the default


def test_fragments_are_agglomerated_by_barcode(mb):
    res = barcodes.decode(mb.barcode_image, fragments=mb.fragments)
    assert len(res.table) < mb.fragments.max()
    assert adapted_rand_error(mb.labels, res.labels)[0] < 0.05


def test_one_array_per_tag_is_the_same_as_a_stack(mb, decoded):
    res = barcodes.decode(list(mb.barcode_image), channel_axis=None, codebook=mb.codebook)
    np.testing.assert_array_equal(res.labels, decoded.labels)


def test_round_shifts_are_measured_and_undone():
    shifted = mini_brain(n_neurons=30, shape=(32, 128, 128), n_channels=12, seed=2, tags_per_round=4,
                         round_shift=3.0)
    shifts = register_rounds(shifted.reference_image)
    np.testing.assert_allclose(shifts[:, 1:], -shifted.round_shifts[:, 1:], atol=0.5)
    plain = barcodes.decode(shifted.barcode_image, codebook=shifted.codebook)
    registered = barcodes.decode(shifted.barcode_image, codebook=shifted.codebook,
                                 reference=shifted.reference_image, round_of_channel=shifted.round_of_channel)
    assert voxels_right(registered.labels, shifted.labels) > voxels_right(plain.labels, shifted.labels) + 0.02
    # the reference may also travel as extra channels of the image
    stacked = np.concatenate([shifted.barcode_image, shifted.reference_image])
    inline = barcodes.decode(stacked, codebook=shifted.codebook, reference_channels=[12, 13, 14],
                             round_of_channel=shifted.round_of_channel)
    np.testing.assert_array_equal(inline.labels, registered.labels)


def test_preview_of_one_slice(mb):
    decoder = barcodes.Decoder(mb.barcode_image, codebook=mb.codebook)
    preview = decoder.preview(10)
    assert preview["code"].shape == mb.labels.shape[1:]
    strict = decoder.with_options(min_similarity=0.97).preview(10)
    assert (strict["code"] > 0).sum() < (preview["code"] > 0).sum()
    counts, edges = decoder.histograms
    assert counts.shape == (12, len(edges) - 1)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"channel_axis": None}, ValueError, "one channel per tag"),
        ({"codebook": np.eye(5, dtype=bool)}, CodebookError, "5 bits but the image has 12"),
        ({"method": "magic"}, ValueError, "method must be one of"),
        ({"identity": "vibes"}, ValueError, "identity must be one of"),
        ({"reference_channels": [40]}, ValueError, "out of range"),
        ({"reference": np.zeros((2, 32, 128, 128))}, ValueError, "round_of_channel"),
        ({"thresholds": [0.1, 0.2]}, ValueError, "one value per channel"),
    ],
)
def test_bad_arguments(mb, kwargs, error, message):
    with pytest.raises(error, match=message):
        barcodes.decode(mb.barcode_image, **kwargs)


def test_bad_images(mb):
    with pytest.raises(ValueError, match="one channel per tag"):
        barcodes.decode(mb.barcode_image[0])
    nan = mb.barcode_image.astype(np.float32)
    nan[3, 5, 5, 5] = np.nan
    with pytest.raises(ValueError, match=r"Channels \[3\] contain NaN"):
        barcodes.decode(nan)
    empty = mb.barcode_image.copy()
    empty[7] = 0
    with pytest.raises(ValueError, match=r"Channels \[7\] are empty"):
        barcodes.decode(empty)
    with pytest.raises(ValueError, match="fragments must be integer"):
        barcodes.decode(mb.barcode_image, fragments=mb.labels.astype(float))
    rng = np.random.default_rng(0)  # tags that are pure noise: nothing to learn, said so
    noise = rng.gamma(2.0, 50.0, mb.barcode_image.shape).astype(np.float32)
    with pytest.raises(ValueError, match="No barcode could be learned"):
        barcodes.decode(noise)


def test_nothing_is_written_when_the_input_is_bad(mb, tmp_path):
    bad = mb.barcode_image.copy()
    bad[2] = 0
    with pytest.raises(ValueError):
        barcodes.decode(da.from_array(bad, chunks=(12, 16, 64, 64)), out=tmp_path / "labels.ome.zarr")
    assert list(tmp_path.iterdir()) == []


def test_progress_is_reported_to_the_end(mb):
    seen = []
    barcodes.decode(mb.barcode_image, codebook=mb.codebook, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (1000, 1000) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_large_volumes_learn_from_boxes_all_over(mb, monkeypatch):
    from napari_wbe import barcode_learning

    monkeypatch.setattr(barcode_learning, "LEARN_VOXELS", 200_000)  # the phantom now counts as large
    res = barcodes.decode(mb.barcode_image)
    learned = {tuple(row) for row in res.codebook.codes}
    big = np.bincount(mb.labels.ravel(), minlength=31)[1:] >= 2000
    assert np.mean([tuple(mb.codebook[i]) in learned for i in np.flatnonzero(big)]) >= 0.8
    chunked = barcodes.decode(da.from_array(mb.barcode_image, chunks=(12, 16, 64, 64)), chunks=(16, 48, 48))
    np.testing.assert_array_equal(chunked.labels, res.labels)


def test_second_learning_pass_finds_a_code_the_first_left_out():
    mb = mini_brain(n_neurons=20, shape=(24, 96, 96), n_channels=18, seed=0)
    withheld = int(np.argmax(np.bincount(mb.labels.ravel())[1:]))  # the biggest cell's code
    known = Codebook(np.delete(mb.codebook, withheld, axis=0))
    decoder = barcodes.Decoder(mb.barcode_image, codebook=known)
    sample = learning_sample(decoder.stack, decoder.settings)
    more, _ = learn_unexplained(sample, decoder.settings, known, "mean", 200, 5.0)
    assert tuple(mb.codebook[withheld]) in {tuple(code) for code in more.codes}
    assert len(more) == len(known) + 1  # nothing else: the known cells are explained


@pytest.mark.parametrize("shape", [(3, 9, 20, 17), (2, 2, 3, 40)])
def test_compiled_smoothing_matches_scipy(shape):
    """The fused kernel normalises, then correlates with an off-centre gaussian per axis,
    reflecting at the edges as scipy.ndimage does (also where the kernel outgrows an axis)."""
    from dataclasses import replace

    from scipy import ndimage as ndi

    from napari_wbe.barcode_decoding import DecodeSettings, prepare, shifted_gaussian

    rng = np.random.default_rng(0)
    block = rng.integers(0, 1000, shape).astype(np.uint16)
    shifts = rng.uniform(-2.5, 2.5, (shape[0], 3))
    settings = DecodeSettings(low=np.full(shape[0], 200, np.float32), high=np.full(shape[0], 900, np.float32),
                              centroids=np.eye(shape[0], dtype=np.float32), sigma=0.7, foreground_threshold=0.25,
                              min_similarity=0.9, shifts=shifts)
    for s in (settings, replace(settings, shifts=None, sigma=0.0)):
        expected = np.maximum((block.astype(np.float64) - 200) / 700, 0)
        for c in range(shape[0]):
            for axis in range(3):
                move = 0.0 if s.shifts is None else s.shifts[c, axis]
                expected[c] = ndi.correlate1d(expected[c], shifted_gaussian(s.sigma, move), axis=axis, mode="reflect")
        np.testing.assert_allclose(prepare(block, s), expected, atol=2e-6)


def test_compiled_learning_helpers_match_numpy():
    from napari_wbe.barcode_kernels import bits_above, group_sums_kernel, interior

    rng = np.random.default_rng(1)
    values = rng.integers(0, 2, (6, 7, 8))
    valid = rng.random(values.shape) > 0.3
    inside = valid.copy()
    for axis in range(3):
        for step in (1, -1):
            inside &= values == np.roll(values, step, axis=axis)  # wrapping, as the kernel does
    np.testing.assert_array_equal(interior(values, valid), inside)
    x = rng.random((5, 6, 7, 8)).astype(np.float32)
    levels = np.full(5, 0.5, np.float32)
    expected = sum((x[c] > 0.5).astype(np.int64) << c for c in range(5))
    np.testing.assert_array_equal(bits_above(x, levels, np.ones(values.shape, bool)), expected)
    groups = rng.integers(-1, 4, 100)
    columns = rng.random((3, 100))
    reference = np.stack([np.bincount(groups[groups >= 0], weights=row[groups >= 0], minlength=4) for row in columns], 1)
    np.testing.assert_array_equal(group_sums_kernel(groups, columns, 4), reference)


def _two_cells_one_tag_apart(seed=0):
    """A bright cell (tags 1 7 8 13 15, tag 13 weak) beside a small cell carrying four of
    those tags (1 7 8 15) at quite other levels: its own bits are a subset of its neighbour's.
    A third cell expresses every tag fully, so each channel's bright level is 1; most of the
    volume is background."""
    rng = np.random.default_rng(seed)
    big, small = np.zeros(18), np.zeros(18)
    big[[1, 7, 8, 13, 15]] = [0.73, 0.41, 0.53, 0.28, 0.36]
    small[[1, 7, 8, 15]] = [0.29, 0.19, 0.38, 0.92]
    truth = np.zeros((16, 64, 64), np.uint32)
    truth[2:14, 4:40, 4:22] = 1
    truth[2:14, 10:34, 24:34] = 2
    truth[2:14, 46:60, 40:60] = 3
    levels = np.stack([np.zeros(18), big, small, np.ones(18)])[truth]  # (z, y, x, c)
    image = 100 + 1000 * np.moveaxis(levels, -1, 0) + rng.normal(0, 15, (18,) + truth.shape)
    return np.clip(image, 0, None).astype(np.uint16), truth, big, small


def test_a_cell_whose_tags_are_a_subset_of_its_neighbours_keeps_its_own_code():
    image, truth, big, small = _two_cells_one_tag_apart()
    res = barcodes.decode(image, min_support=100)
    learned = {tuple(code) for code in res.codebook.codes}
    assert tuple(big > 0) in learned and tuple(small > 0) in learned
    assert adapted_rand_error(truth, res.labels)[0] < 0.05


def test_codes_measuring_one_profile_are_one_code():
    from dataclasses import replace

    from napari_wbe.barcode_learning import drop_duplicate_profiles

    mb = mini_brain(n_neurons=10, shape=(16, 48, 48), n_channels=18, seed=0)
    decoder = barcodes.Decoder(mb.barcode_image)
    book, settings = decoder.codebook, decoder.settings
    # a second, rarer code whose measured profile is the first code's own
    twin = Codebook(np.vstack([book.codes, ~book.codes[:1]]), support=np.r_[book.support, 1])
    twin_settings = replace(settings, centroids=np.vstack([settings.centroids, settings.centroids[:1]]),
                            profiles=np.vstack([settings.profiles, settings.profiles[:1]]))
    kept, kept_settings = drop_duplicate_profiles(twin, twin_settings)
    np.testing.assert_array_equal(kept.codes, book.codes)
    np.testing.assert_array_equal(kept_settings.profiles, settings.profiles)
    assert drop_duplicate_profiles(book, settings)[0] is book  # distinct cells' codes all stay


def test_auto_identity_joins_the_pieces_of_codes_unlikely_to_be_shared(mb, decoded):
    from napari_wbe.barcode_codebook import expected_sharers

    pieces = barcodes.decode(mb.barcode_image, codebook=mb.codebook, identity="connected")
    unshared = expected_sharers(decoded.codebook.codes, len(decoded.codebook)) < barcodes.SHARED_CODE_RISK
    assert unshared.any() and not unshared.all()  # this codebook has both kinds
    joined = decoded.table.set_index("code_index")
    for code, n_pieces in pieces.table["code_index"].value_counts().items():
        if unshared[code - 1]:  # one cell, however many pieces
            assert joined.loc[[code], "n_pieces"].tolist() == [n_pieces]
        else:  # its pieces stay cells of their own
            assert joined.loc[[code], "n_pieces"].tolist() == [1] * n_pieces
    assert decoded.report["codes_joined_across_pieces"] == (joined["n_pieces"] > 1).sum() > 0
