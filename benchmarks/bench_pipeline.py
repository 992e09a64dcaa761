"""Wall time and peak memory of the headless chain (issue 8) on a big phantom.

    python benchmarks/bench_pipeline.py                          # 128 x 512 x 512, 300 neurons, 18 tags
    python benchmarks/bench_pipeline.py --cluster 2              # on a LocalCluster of 2 worker threads
    python benchmarks/bench_pipeline.py --shape 48 192 192 --neurons 40 --decisions 100

The phantom is made as in tests/test_pipeline.py (but 3x the default imaging noise; decoded
with fragment_similarity=0.9), then Pipeline runs decode -> agglomerate -> proofread (the
merge queue answered from the truth, by default until it is empty) -> connectome ->
simulate (the T1 cells at 200 Hz, 1 s). Printed per stage: wall seconds, the peak resident
memory (RSS, sampled every 20 ms by a thread) while it ran, and that peak above the RSS
before the chain (which holds the phantom: its EM, labels, fragments and 18 channels).
Then the faithfulness row of the result (pipeline_truth.faithfulness) and the process's
lifetime peak RSS (getrusage).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import threading
import time
import warnings

import numpy as np

from napari_wbe import emulation, phantom
from napari_wbe.emulation import ModelParams
from napari_wbe.pipeline import STAGES, Pipeline
from napari_wbe.pipeline_truth import faithfulness, poisson_events, segment_events, segment_identities

PAGE = os.sysconf("SC_PAGE_SIZE")
PARAMS = ModelParams(w_syn=1.0, f_poi=250 * 0.275 / 1.0)  # why: see tests/test_pipeline.py


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


class PeakRSS:
    """Samples RSS on a thread; `peak` is the largest sample since `reset()`."""

    def __init__(self, every: float = 0.02):
        self.every, self.peak, self._stop = every, rss(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, rss())

    def reset(self) -> None:
        self.peak = rss()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(128, 512, 512))
    parser.add_argument("--neurons", type=int, default=300)
    parser.add_argument("--channels", type=int, default=18)
    parser.add_argument("--decisions", type=int, default=None, help="default: until the queue is empty")
    parser.add_argument("--cluster", type=int, default=0, help="run on a LocalCluster of this many workers")
    parser.add_argument("--processes", action="store_true", help="LocalCluster workers as processes")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # synapses on undecoded voxels: counted, and scored below

    start = time.perf_counter()
    mb = phantom.mini_brain(n_neurons=args.neurons, shape=tuple(args.shape), n_channels=args.channels, noise=3.0)
    fragments = mb.fragments
    print(f"{mb}\nphantom + fragments ({int(fragments.max())}): {time.perf_counter() - start:.1f} s; "
          f"barcode image {mb.barcode_image.nbytes / 2**30:.2f} GiB")

    sampler = PeakRSS()
    with contextlib.ExitStack() as stack:
        client = None
        if args.cluster:
            import distributed

            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=args.cluster, threads_per_worker=1, processes=args.processes, dashboard_address=None))
            client = stack.enter_context(distributed.Client(cluster))
            print(f"LocalCluster: {args.cluster} workers, processes={args.processes} (their RSS is not counted)"
                  if args.processes else f"LocalCluster: {args.cluster} worker threads in this process")
        baseline = rss()
        pipeline = Pipeline(mb.barcode_image, fragments=fragments, em=mb.em, synapses=mb.synapses, client=client)
        stimulated = mb.neurons.index[mb.neurons["cell_type"] == "T1"]
        events = poisson_events(stimulated, 200.0, 1000.0, seed=1)
        peaks = {}

        def timed(stage, call):
            sampler.reset()
            out = call()
            peaks[stage] = sampler.peak
            return out

        timed("decode", lambda: pipeline.decode(fragment_similarity=0.9))
        timed("agglomerate", pipeline.agglomerate)
        proofread = timed("proofread", lambda: pipeline.proofread(args.decisions, truth=mb.labels))
        cx = timed("connectome", pipeline.connectome)
        mapped = segment_events(events, segment_identities(pipeline.labels, mb.labels), cx.neurons.index)
        timed("simulate", lambda: pipeline.simulate(input_events=mapped, duration_ms=1000.0, params=PARAMS))
    sampler.stop()

    print(f"\nRSS before the chain (phantom in memory): {baseline / 2**30:.2f} GiB")
    print(f"{'stage':>12s}{'seconds':>10s}{'peak RSS GiB':>14s}{'above start':>13s}")
    for stage in STAGES:
        print(f"{stage:>12s}{pipeline.timings[stage]:10.1f}{peaks[stage] / 2**30:14.2f}"
              f"{(peaks[stage] - baseline) / 2**30:13.2f}")
    print(f"{'total':>12s}{sum(pipeline.timings.values()):10.1f}")
    voxel_channels = mb.barcode_image.size
    decode_s = pipeline.timings["decode"] + pipeline.timings["agglomerate"]
    print(f"decode + agglomerate: {voxel_channels / decode_s / 1e6:.1f} M voxel-channels/s; "
          f"{len(pipeline.segmentation.table)} segments for {args.neurons} neurons; proofreading: "
          f"{proofread.decisions} decisions ({proofread.accepted} merges), exhausted={proofread.exhausted}; "
          f"connectome: {len(cx.neurons)} neurons, {len(cx.edges)} edges; "
          f"{len(pipeline.simulation.spikes)} spikes")

    start = time.perf_counter()
    true_simulation = emulation.simulate(mb.connectome, input_events=events, duration_ms=1000.0, params=PARAMS)
    row = faithfulness(np.asarray(pipeline.labels), cx, mb.labels, mb.connectome, mb.synapses, events,
                       true_simulation=true_simulation, params=PARAMS)
    print("faithfulness: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()) +
          f" ({time.perf_counter() - start:.1f} s)")
    print(f"lifetime peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
