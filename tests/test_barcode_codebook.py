"""Codebooks: files people have, validation, learning helpers, collision statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_wbe.barcode_codebook import (
    Codebook,
    CodebookError,
    codes_from_counts,
    collision_report,
    expected_sharers,
    pack_bits,
    read_codebook,
    unpack_bits,
    write_codebook,
)

CODES = np.array([[1, 0, 1, 0], [0, 1, 1, 0], [1, 1, 0, 1]], bool)


def test_merlin_csv_round_trip(tmp_path):
    book = Codebook(CODES, ["a", "b", "c"], [10, 20, 30])
    write_codebook(book, tmp_path / "codebook.csv")
    text = (tmp_path / "codebook.csv").read_text().splitlines()
    assert text[0] == "name,id,bit1,bit2,bit3,bit4" and text[1] == "a,10,1,0,1,0"
    back = read_codebook(tmp_path / "codebook.csv")
    np.testing.assert_array_equal(back.codes, CODES)
    assert back.names == ["a", "b", "c"] and back.ids.tolist() == [10, 20, 30]


def test_spacetx_json_flattens_rounds_and_channels(tmp_path):
    entries = [{"codeword": [{"r": 0, "c": 1, "v": 1}, {"r": 1, "c": 0, "v": 1}], "target": "n1"},
               {"codeword": [{"r": 1, "c": 1, "v": 1}], "target": "n2"}]
    (tmp_path / "codebook.json").write_text(json.dumps({"version": "0.0.0", "mappings": [{"codebook": entries}]}))
    book = read_codebook(tmp_path / "codebook.json")
    assert book.names == ["n1", "n2"]
    assert book.codes.astype(int).tolist() == [[0, 1, 1, 0], [0, 0, 0, 1]]  # bit = round * 2 + channel


@pytest.mark.parametrize(
    ("codes", "message"),
    [
        ([[1, 0], [1, 0]], "more than once"),
        ([[1, 2], [0, 1]], "must be 0 or 1"),
        ([[0, 0], [0, 1]], "no bit set"),
        ([1, 0, 1], "2-D array"),
    ],
)
def test_bad_codebooks_are_refused(codes, message):
    with pytest.raises(CodebookError, match=message):
        Codebook(np.array(codes))


def test_missing_codebook_file(tmp_path):
    with pytest.raises(CodebookError, match="No codebook file"):
        read_codebook(tmp_path / "nope.csv")


def test_bits_pack_and_unpack():
    numbers = pack_bits(CODES)
    np.testing.assert_array_equal(unpack_bits(numbers, 4), CODES)


def test_rare_codes_one_bit_away_fold_into_frequent_ones():
    frequent, typo, other = 0b0101, 0b0100, 0b1010
    book = codes_from_counts(np.array([frequent, typo, other]), np.array([1000, 50, 400]), 4, min_support=100,
                             fold_ratio=5)
    assert pack_bits(book.codes).tolist() == [frequent, other]
    assert book.support.tolist() == [1050, 400]


def test_no_code_with_enough_support_says_what_to_change():
    with pytest.raises(CodebookError, match="lower min_support"):
        codes_from_counts(np.array([1, 2]), np.array([3, 4]), 4, min_support=100, fold_ratio=5)


def test_collision_statistics():
    report = collision_report(n_bits=1, expression_p=0.5, n_cells=2)
    assert report["pair_collision_probability"] == pytest.approx(0.5)
    assert report["expected_colliding_pairs"] == pytest.approx(0.5)
    big = collision_report(n_bits=18, expression_p=0.35, n_cells=100_000)
    assert big["expected_cells_sharing_a_code"] > 50  # a whole brain needs more tags


def test_expected_sharers_of_each_code():
    rng = np.random.default_rng(0)
    codes = rng.random((100, 18)) < 0.35
    codes[0] = False
    codes[0, np.argmax(codes.mean(axis=0))] = True  # one tag, the most common one
    sharers = expected_sharers(codes, 100)
    assert sharers[0] > 20 * np.median(sharers)  # a one-tag code is far likelier to recur
    assert np.median(sharers) < 0.01  # a typical code among 100 cells: almost surely unique
    np.testing.assert_allclose(expected_sharers(codes, 10_000), sharers * 9999 / 99)
