"""The whole chain, headless: barcoded volume -> segmentation -> proofreading -> connectome ->
emulation, for scripts, notebooks and batch jobs on a dask cluster.

    from napari_wbe import phantom, volumes
    from napari_wbe.pipeline import Pipeline, run_pipeline

    mb = phantom.mini_brain()
    result = run_pipeline(mb.barcode_image, fragments=mb.fragments, em=mb.em, synapses=mb.synapses,
                          decisions=100, truth=mb.labels)            # or answer=my_callback
    result.segmentation.labels, result.proofread.labels, result.connectome.edges, result.timings

    # or stage by stage, each returning a plain result (and kept on the pipeline):
    p = Pipeline(barcode_image, fragments=fragments, em=em, synapses=synapses, client=client)
    p.decode(codebook="codebook.csv")  # -> barcodes.Decoder: levels, codebook, code profiles
    p.agglomerate()                    # -> barcodes.DecodeResult: .labels, .table (one row per cell)
    p.proofread(decisions=50, answer=ask)   # -> ProofreadResult: .labels, .mapping, .answers
    p.connectome()                     # -> connectome.Connectome of the latest labels
    p.simulate({12: 150.0}, duration_ms=500)  # -> emulation.SimulationResult; ids from p.cx.neurons
    p.timings                          # seconds per stage

    # a batch job on a cluster: lazy volumes, so each worker reads its own blocks
    from distributed import Client
    vol = volumes.open_volume("rounds.ome.zarr")
    result = run_pipeline(vol.data, fragments=volumes.open_volume("ws.ome.zarr").data,
                          synapses=synapses, client=Client("tcp://scheduler:8786"))

The stages:
1. decode: per-channel levels, the codebook (learned, or given) and each code's tag profile,
   from strided samples of the barcode image (`barcodes.Decoder`).
2. agglomerate: cells from the codes. With `fragments` (an over-segmentation, e.g. a
   watershed), each fragment takes the code its voxels vote for and touching fragments
   with one code join (barcode-guided agglomeration); without, voxels are decoded and
   joined into connected cells.
3. proofread: the ranked merge queue (`MergeQueue` over the segments' contacts, boundary
   strength from `em` when given, each pair weighed by the two cells' barcodes; with a limited
   number of decisions, membranes learned from the answers too) answered `decisions` times
   (None: until it has nothing left to ask) by `answer(pair) -> bool`, a person or a script;
   `truth=` answers from a ground truth instead (`pipeline_truth.truth_oracle`). Accepted
   merges relabel the segmentation chunk by chunk; `log_path` also records them as Editor
   merges in an edit log (that needs the labels in memory).
4. connectome: synapses assigned to the latest labels (proofread, else agglomerated).
5. simulate: the LIF emulation of that connectome (`emulation.simulate`).
Running a stage again replaces its result and drops the results that depended on it, so
a connectome never describes labels other than the current ones. A stage whose input is
missing raises `PipelineError` naming the step to run first.

Dask: numpy inputs are wrapped in dask arrays of `chunks` blocks and every stage that walks
the volume (decoding, agglomeration, contacts, relabelling, synapse assignment, metrics)
goes block by block through dask, so on a `dask.distributed` cluster the volume work runs
on its workers. `client` picks the scheduler: a `distributed.Client`, a scheduler address
("tcp://host:8786", connected when the Pipeline is made), or None for dask's current
default (a Client created earlier in the session is that default). Results do not depend on the scheduler
(tests/test_pipeline.py checks a LocalCluster against threads, voxel for voxel and spike for
spike). Numpy inputs are sent to the cluster once (scattered), not inside every task graph;
volumes from files (`volumes.open_volume`) are read by the workers block by block. The
emulation runs in this process: its input is a table of edges, not a volume.
Scoring a run against a ground truth (the phantom's) is in `pipeline_truth`.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import dask
import dask.array as da
import numpy as np
import pandas as pd

from . import barcodes, emulation
from .barcode_volume import DEFAULT_CHUNKS
from .connectome_build import from_segmentation
from .pipeline_proofread import ProofreadResult, answer_queue, merge_with_log, relabel_segments, segment_codes
from .proofreading_contacts import contact_table
from .proofreading_faces import face_sample

__all__ = ["STAGES", "Pipeline", "PipelineError", "PipelineResult", "ProofreadResult", "run_pipeline"]

STAGES = ("decode", "agglomerate", "proofread", "connectome", "simulate")
# What each stage leaves on the pipeline; the first missing one names the step to run.
_OUTPUT = {"decode": "decoder", "agglomerate": "segmentation", "proofread": "proofread_result",
           "connectome": "cx", "simulate": "simulation"}


class PipelineError(ValueError):
    """A stage run before the stage it needs, or input it cannot use; says what to do."""


@dataclass
class PipelineResult:
    decoder: barcodes.Decoder | None = None
    segmentation: barcodes.DecodeResult | None = None
    proofread: ProofreadResult | None = None
    connectome: object = None  # connectome.Connectome
    simulation: emulation.SimulationResult | None = None
    timings: dict = field(default_factory=dict)  # stage -> seconds


class Pipeline:
    """The chain on one volume; see the module docstring.

    barcode_image: (c, z, y, x) tag channels, numpy or dask (needed by decode).
    fragments: (z, y, x) over-segmentation to agglomerate by barcode (optional).
    em: (z, y, x) EM on the same grid: boundary strength for the merge queue (optional).
    synapses: table with pre_z, pre_y, pre_x, post_z, post_y, post_x in voxels (+ nt, ...).
    labels: an existing segmentation to start from at proofreading, instead of decoding.
    chunks: block shape (z, y, x) given to numpy inputs; dask inputs keep their own.
    client: a dask.distributed Client, a scheduler address, or None (dask's default).
    progress: callable(done, total), in thousandths of the stage that is running.
    """

    def __init__(self, barcode_image=None, *, fragments=None, em=None, synapses=None, labels=None,
                 chunks=DEFAULT_CHUNKS, client=None, progress=None):
        if barcode_image is None and labels is None:
            raise PipelineError("Give a barcode_image (c, z, y, x) to decode, or labels (z, y, x) to start "
                                "from an existing segmentation.")
        if not (isinstance(chunks, (tuple, list)) and len(chunks) == 3 and all(int(c) >= 1 for c in chunks)):
            raise PipelineError(f"chunks must be 3 block sizes (z, y, x) >= 1, e.g. {DEFAULT_CHUNKS}; got {chunks!r}.")
        self.chunks = tuple(int(c) for c in chunks)
        if barcode_image is not None and np.ndim(barcode_image) != 4:
            raise PipelineError(f"barcode_image must be (c, z, y, x) with one channel per tag; got shape "
                                f"{np.shape(barcode_image)}. Stack single channels with np.stack(channels).")
        spatial = tuple(np.shape(barcode_image)[1:]) if barcode_image is not None else tuple(np.shape(labels))
        for name, array in (("fragments", fragments), ("em", em), ("labels", labels)):
            if array is not None and tuple(np.shape(array)) != spatial:
                raise PipelineError(f"{name} has shape {tuple(np.shape(array))} but the volume is {spatial} "
                                    "(z, y, x); every volume must share one voxel grid.")
        for name, array in (("fragments", fragments), ("labels", labels)):
            if array is not None and np.dtype(array.dtype).kind not in "iu":
                raise PipelineError(f"{name} must hold integer ids, not {array.dtype}; convert with .astype('uint32').")
        if synapses is not None and not isinstance(synapses, pd.DataFrame):
            raise PipelineError(f"synapses must be a pandas DataFrame, not {type(synapses).__name__}.")
        if progress is not None and not callable(progress):
            raise PipelineError("progress must be a callable(done, total), or None.")
        self.client = _client(client)
        self._scattered: list = []  # futures of inputs sent to a cluster, alive as long as the pipeline
        self.barcode_image = None if barcode_image is None else self._chunked(barcode_image, channels=True)
        self.fragments = None if fragments is None else self._chunked(fragments)
        self.em = None if em is None else self._chunked(em)
        self.synapses = synapses
        self.progress = progress
        self.timings: dict[str, float] = {}
        self.decoder = self.proofread_result = self.cx = self.simulation = None
        self.segmentation = None if labels is None else _given_labels(labels)
        self._contacts = None  # of the current segmentation, reused when proofreading again

    # -- the stages ---------------------------------------------------------------------
    def decode(self, codebook=None, method: str = "metric", **options) -> barcodes.Decoder:
        """Learn levels, codebook and code profiles; `options` as `barcodes.decode` takes them."""
        if self.barcode_image is None:
            raise PipelineError("decode() needs a barcode image: Pipeline(barcode_image=...). With only labels, "
                                "start at proofread().")
        with self._stage("decode"):
            self.decoder = barcodes.Decoder(self.barcode_image, 0, codebook, method, progress=self.progress,
                                            **options)
        return self.decoder

    def agglomerate(self, out=None) -> barcodes.DecodeResult:
        """Cells from the learned codes: fragments joined by barcode, or decoded voxels
        joined into connected cells. out: folder to write the labels to (OME-Zarr)."""
        self._require("agglomerate")
        with self._stage("agglomerate"):
            result = self.decoder.run(fragments=self.fragments, chunks=self.chunks, out=out, progress=self.progress)
        self.segmentation = result
        self._contacts = None
        return result

    def proofread(self, decisions: int | None = None, answer=None, *, truth=None, log_path=None,
                  weights=None, learn: bool = True) -> ProofreadResult:
        """Answer the ranked merge queue `decisions` times (None: until it is empty).

        answer: callable(pair) -> bool, pair as `MergeQueue.next()` gives it (a, b, probability,
            contact, ...); True merges a and b. truth: a ground-truth label volume to answer from
            instead. weights, learn: of the queue's merge model (see MergeQueue).
        """
        self._require("proofread")
        if decisions is not None and (not isinstance(decisions, (int, np.integer)) or decisions < 0):
            raise PipelineError(f"decisions must be a whole number >= 0, or None (until the queue is empty); "
                                f"got {decisions!r}.")
        if answer is None and truth is None and decisions != 0:
            raise PipelineError("proofread() needs someone to answer the queue: answer=callable(pair) -> bool, or "
                                "truth=labels to answer from; decisions=0 keeps the segmentation as it is.")
        if answer is not None and not callable(answer):
            raise PipelineError(f"answer must be a callable(pair) -> bool, not {type(answer).__name__}.")
        labels = self.segmentation.labels
        with self._stage("proofread"):
            chunked = self._chunked(labels)  # once: on a cluster each call sends the labels
            if answer is None and truth is not None:
                from .pipeline_truth import truth_oracle

                answer = truth_oracle(chunked, truth)
            if self._contacts is None:
                self._contacts = contact_table(chunked, image=self.em, progress=self.progress)
            # With EM and a limited number of decisions the queue also learns membranes from the
            # answers (faces sampled block by block); answered to the end, the order changes little.
            faces = None if self.em is None or not learn or decisions is None else \
                face_sample(chunked, self.em, self._contacts.pairs, progress=self.progress)
            codes = segment_codes(self.segmentation.table)  # cells decoded from barcodes carry their code
            mapping, answers, exhausted = answer_queue(self._contacts, decisions, answer, weights, learn, faces, codes)
            proofread = (merge_with_log(labels, mapping, log_path) if log_path is not None
                         else relabel_segments(labels, chunked, mapping))
        self.proofread_result = ProofreadResult(proofread, mapping, answers, exhausted)
        return self.proofread_result

    def connectome(self, synapses=None, **options):
        """The connectome of the latest labels; `options` as `connectome.from_segmentation`."""
        synapses = self.synapses if synapses is None else synapses
        if synapses is None:
            raise PipelineError("connectome() needs a synapse table: Pipeline(synapses=...) or "
                                "connectome(synapses=...), with pre_z, pre_y, pre_x, post_z, post_y, post_x.")
        self._require("connectome")
        labels = self.labels
        with self._stage("connectome"):
            self.cx = from_segmentation(self._chunked(labels), synapses, progress=self.progress, **options)
        return self.cx

    def simulate(self, stimulus=None, duration_ms: float = 1000.0, **options) -> emulation.SimulationResult:
        """Emulate the connectome; arguments as `emulation.simulate` (ids are its neuron ids)."""
        self._require("simulate")
        with self._stage("simulate"):
            self.simulation = emulation.simulate(self.cx, stimulus=stimulus, duration_ms=duration_ms,
                                                 progress=self.progress, **options)
        return self.simulation

    def run(self, decisions: int | None = 0, answer=None, *, truth=None, stimulus=None, duration_ms=1000.0,
            decode_options=None, proofread_options=None, connectome_options=None,
            simulate_options=None) -> PipelineResult:
        """Every stage in order (decode and agglomerate are skipped when the pipeline was
        given labels); the simulation is skipped when there is neither `stimulus` nor
        `input_events` in simulate_options (nothing would drive it)."""
        if self.barcode_image is not None:
            self.decode(**(decode_options or {}))
            self.agglomerate()
        self.proofread(decisions, answer, truth=truth, **(proofread_options or {}))
        self.connectome(**(connectome_options or {}))
        simulate_options = dict(simulate_options or {})
        if stimulus is not None or simulate_options.get("input_events") is not None:
            self.simulate(stimulus, duration_ms, **simulate_options)
        return self.result

    # -- what there is ------------------------------------------------------------------
    @property
    def labels(self):
        """The latest segmentation: proofread, else agglomerated (None before either)."""
        if self.proofread_result is not None:
            return self.proofread_result.labels
        return None if self.segmentation is None else self.segmentation.labels

    @property
    def result(self) -> PipelineResult:
        return PipelineResult(self.decoder, self.segmentation, self.proofread_result, self.cx, self.simulation,
                              dict(self.timings))

    # -- internals -----------------------------------------------------------------------
    def _require(self, stage: str) -> None:
        """Raise PipelineError naming the first earlier step whose result is missing."""
        needed = {"agglomerate": ["decode"], "proofread": ["decode", "agglomerate"],
                  "connectome": ["decode", "agglomerate"], "simulate": ["decode", "agglomerate", "connectome"]}
        for step in needed.get(stage, []):
            if step in ("decode", "agglomerate") and self.segmentation is not None and stage != "agglomerate":
                continue  # a segmentation exists (decoded, or given): decoding is not needed
            if getattr(self, _OUTPUT[step]) is None:
                order = " -> ".join(f"{s}()" for s in needed[stage] + [stage])
                raise PipelineError(f"{stage}() needs the result of {step}(), which has not run yet; run the "
                                    f"stages in order: {order} (or pipeline.run() for all of them).")

    @contextlib.contextmanager
    def _stage(self, stage: str):
        start = time.perf_counter()
        scheduler = dask.config.set(scheduler=self.client) if self.client is not None else contextlib.nullcontext()
        with scheduler:
            yield
        self.timings[stage] = time.perf_counter() - start
        for later in STAGES[STAGES.index(stage) + 1:]:  # their inputs changed: they are stale now
            setattr(self, _OUTPUT[later], None)
            self.timings.pop(later, None)
        if stage == "decode":
            self._contacts = None  # the segmentation it described was dropped above

    def _chunked(self, array, channels: bool = False) -> da.Array:
        if isinstance(array, da.Array):
            return array
        chunks = ((np.shape(array)[0],) if channels else ()) + self.chunks
        array = np.asarray(array) if isinstance(array, (list, tuple)) else array
        if hasattr(self.client, "scatter") and isinstance(array, np.ndarray):
            # Sent to the cluster once: from_array would put the array in every task graph. The
            # future is kept here: the graph holds only its key, and a collected future lets the
            # scheduler drop the data while tasks still need it ("lost dependencies").
            future = self.client.scatter(array, hash=False)
            self._scattered.append(future)
            whole = da.from_delayed(dask.delayed(future), array.shape, array.dtype)
            return whole.rechunk(chunks)
        return da.from_array(array, chunks=chunks)


def run_pipeline(barcode_image=None, fragments=None, em=None, synapses=None, *, labels=None, decisions=0,
                 answer=None, truth=None, stimulus=None, duration_ms=1000.0, chunks=DEFAULT_CHUNKS, client=None,
                 progress=None, **run_options) -> PipelineResult:
    """Build a Pipeline and run every stage; see the module docstring and `Pipeline.run`."""
    pipeline = Pipeline(barcode_image, fragments=fragments, em=em, synapses=synapses, labels=labels,
                        chunks=chunks, client=client, progress=progress)
    return pipeline.run(decisions, answer, truth=truth, stimulus=stimulus, duration_ms=duration_ms, **run_options)


def _client(client):
    """A scheduler for dask.config.set: a Client as is, an address connected to."""
    if client is None or (hasattr(client, "get") and hasattr(client, "scatter")):
        return client
    if isinstance(client, str):
        try:
            from distributed import Client
        except ImportError as error:  # distributed is optional: only cluster users need it
            raise PipelineError(f"client={client!r} needs dask.distributed: pip install distributed.") from error
        return Client(client)
    raise PipelineError(f"client must be a dask.distributed Client, a scheduler address ('tcp://host:8786') or "
                        f"None; got {type(client).__name__}.")


def _given_labels(labels) -> barcodes.DecodeResult:
    """A segmentation given by the user, in the shape agglomerate() leaves one."""
    return barcodes.DecodeResult(labels=labels, table=pd.DataFrame(), codebook=None, confidence=None,
                                 report={"source": "given labels"})
