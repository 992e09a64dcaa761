"""The pipeline's stages on a small phantom: order, bad input, starting from labels, edit logs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_wbe import phantom
from napari_wbe.pipeline import Pipeline, PipelineError, run_pipeline
from napari_wbe.proofreading import replay
from napari_wbe.proofreading_metrics import metrics


@pytest.fixture(scope="module")
def small():
    return phantom.mini_brain(n_neurons=8, shape=(16, 64, 64), seed=2, fragment_size=300)


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():  # synapses on background: counted in the report, fine here
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def test_stages_out_of_order_name_the_missing_step(small):
    pipeline = Pipeline(small.barcode_image, fragments=small.fragments, synapses=small.synapses)
    with pytest.raises(PipelineError, match=r"simulate\(\) needs the result of decode\(\)"):
        pipeline.simulate({1: 150.0})
    with pytest.raises(PipelineError, match=r"agglomerate\(\) needs the result of decode\(\)"):
        pipeline.agglomerate()
    with pytest.raises(PipelineError, match=r"connectome\(\) needs the result of decode\(\)"):
        pipeline.connectome()
    given = Pipeline(labels=small.labels, synapses=small.synapses)
    with pytest.raises(PipelineError, match=r"simulate\(\) needs the result of connectome\(\)"):
        given.simulate({1: 150.0})
    with pytest.raises(PipelineError, match="needs a barcode image"):
        given.decode()


def test_running_a_stage_again_drops_what_depended_on_it(small):
    pipeline = Pipeline(labels=small.labels.copy(), synapses=small.synapses)
    pipeline.proofread(0)
    _quiet(pipeline.connectome)
    pipeline.simulate({1: 150.0}, duration_ms=50)
    assert pipeline.simulation is not None and set(pipeline.timings) == {"proofread", "connectome", "simulate"}
    pipeline.proofread(0)
    assert pipeline.cx is None and pipeline.simulation is None and set(pipeline.timings) == {"proofread"}
    with pytest.raises(PipelineError, match=r"connectome\(\)"):
        pipeline.simulate({1: 150.0})


@pytest.mark.parametrize("kwargs, message", [
    ({}, "Give a barcode_image"),
    ({"barcode_image": np.zeros((16, 64, 64))}, r"must be \(c, z, y, x\)"),
    ({"labels": np.zeros((16, 64, 64), np.float32)}, "labels must hold integer ids"),
    ({"labels": np.zeros((16, 64, 64), np.uint32), "em": np.zeros((16, 64, 65))}, "em has shape"),
    ({"labels": np.zeros((16, 64, 64), np.uint32), "chunks": (64, 64)}, "chunks must be 3 block sizes"),
    ({"labels": np.zeros((16, 64, 64), np.uint32), "client": 3}, "client must be a dask.distributed Client"),
    ({"labels": np.zeros((16, 64, 64), np.uint32), "synapses": {"pre_z": []}}, "synapses must be a pandas"),
])
def test_bad_input_is_refused_up_front(kwargs, message):
    with pytest.raises(PipelineError, match=message):
        Pipeline(**kwargs)


def test_fragments_must_match_the_channels(small):
    with pytest.raises(PipelineError, match="fragments has shape"):
        Pipeline(small.barcode_image, fragments=small.fragments[:, :10])
    with pytest.raises(PipelineError, match="fragments must hold integer ids"):
        Pipeline(small.barcode_image, fragments=small.fragments.astype(float))


def test_proofreading_needs_an_answer_and_a_sane_count(small):
    pipeline = Pipeline(labels=small.fragments, synapses=small.synapses)
    with pytest.raises(PipelineError, match="needs someone to answer"):
        pipeline.proofread(5)
    with pytest.raises(PipelineError, match="decisions must be a whole number"):
        pipeline.proofread(-1, truth=small.labels)
    with pytest.raises(PipelineError, match="answer must be a callable"):
        pipeline.proofread(3, answer="yes")
    with pytest.raises(PipelineError, match="needs a synapse table"):
        Pipeline(labels=small.labels).connectome()


def test_from_fragments_the_truth_answered_queue_rebuilds_the_neurons(small, tmp_path):
    """Starting at proofreading from the over-segmentation: answering every suggestion from
    the truth joins each neuron's fragments (the phantom's fragments never cross neurons)."""
    asked = []

    def answer(pair):
        asked.append(pair)
        return small.fragment_to_neuron[pair["a"]] == small.fragment_to_neuron[pair["b"]]

    log = tmp_path / "edits.wbelog"
    pipeline = Pipeline(labels=small.fragments, em=small.em, synapses=small.synapses)
    proofread = pipeline.proofread(None, answer, log_path=log)
    _quiet(pipeline.connectome)
    inside = tuple(np.argwhere(small.labels == 1)[0])  # the segment a researcher would click
    pipeline.simulate({int(proofread.labels[inside]): 200.0}, duration_ms=100)
    result = pipeline.result
    assert proofread.exhausted and proofread.decisions == len(asked) and proofread.accepted > 0
    scores = metrics(proofread.labels, small.labels)
    assert scores["vi_merge"] == 0 and scores["vi_split"] < 0.05
    # The edit log holds the same merges: replayed onto the fragments it gives these labels,
    # and so does the chunk-wise relabelling used without a log.
    np.testing.assert_array_equal(replay(small.fragments, log), proofread.labels)
    again = Pipeline(labels=small.fragments, em=small.em, chunks=(8, 32, 32))
    relabelled = again.proofread(None, truth=small.labels).labels
    np.testing.assert_array_equal(relabelled, proofread.labels)
    assert result.connectome is not None and result.simulation is not None
    assert set(result.timings) == {"proofread", "connectome", "simulate"}


def test_run_pipeline_from_barcodes(small):
    result = _quiet(run_pipeline, small.barcode_image, fragments=small.fragments, synapses=small.synapses,
                    decisions=0, chunks=(8, 32, 32))
    assert result.decoder is not None and result.segmentation is not None
    assert result.proofread.decisions == 0
    np.testing.assert_array_equal(result.proofread.labels, result.segmentation.labels)
    assert result.simulation is None, "nothing drives it without a stimulus"
    assert len(result.connectome.edges) > 0


def test_the_queue_after_barcode_agglomeration_weighs_pairs_by_their_codes(small):
    pipeline = Pipeline(small.barcode_image, fragments=small.fragments, em=small.em)
    pipeline.decode(fragment_similarity=0.9)  # strict: fragments of unclear code stay apart, to be proofread
    table = pipeline.agglomerate().table
    asked = []
    pipeline.proofread(5, lambda pair: asked.append(pair) or False)
    code = dict(zip(table["label"].tolist(), table["code_index"].tolist()))
    assert asked and all(pair["codes"] == (code.get(pair["a"], 0), code.get(pair["b"], 0)) for pair in asked)
    given = Pipeline(labels=small.fragments, em=small.em)  # no barcodes: no codes
    given.proofread(1, lambda pair: asked.append(pair) or False)
    assert "codes" not in asked[-1]
