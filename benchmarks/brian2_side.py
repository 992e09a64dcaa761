"""Run a network on Brian2 in another interpreter: shared by brian2_parity.py and bench_emulation.py.

brian2 2.9 does not import with numpy >= 2.4 (the project's numpy), so it runs in a venv of
its own (numpy < 2.4, brian2). This file is both ends of that hand-over:

    out = run_brian2(brian2_python, brian2_arrays(cx, ...), target="cython", run_ms=500)  # our env
    python brian2_side.py IN.npz OUT.npz                                                # Brian2's env

The Brian2 end builds the objects with napari_wbe/emulation/brian2_export.py, loaded by file
path: it needs only numpy and brian2 there, and importing the package would pull in numba and
pandas. So the parity test checks the very code `to_brian2` gives users.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

EXPORT = Path(__file__).resolve().parents[1] / "napari_wbe" / "emulation" / "brian2_export.py"


def run_brian2(brian2_python, arrays, target="numpy", run_ms=None, warmup_ms=0.0, cache_dir=None,
               timeout=None) -> dict:
    """Build `arrays` (from `brian2_arrays`) in Brian2, run `warmup_ms` then `run_ms` (default:
    the arrays' duration_ms) with the given codegen target; returns spikes (i, step) and times:
    build_s (objects and connect), first_s (wall of the warm-up run: code generation, Cython
    compilation into `cache_dir`, queue setup), run_s (Brian2's own time of the stepping loop
    in the timed run, without its before-run setup) and run_wall_s (with it)."""
    run_ms = float(arrays["duration_ms"]) - warmup_ms if run_ms is None else run_ms
    with tempfile.TemporaryDirectory() as tmp:
        path_in, path_out = f"{tmp}/in.npz", f"{tmp}/out.npz"
        np.savez(path_in, **arrays, target=target, run_ms=run_ms, warmup_ms=warmup_ms,
                 cache_dir=str(cache_dir or ""))
        subprocess.run([brian2_python, __file__, path_in, path_out], check=True, timeout=timeout)
        with np.load(path_out) as out:
            return {key: out[key] for key in out.files}


def _load_export():
    spec = importlib.util.spec_from_file_location("wbe_brian2_export", EXPORT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def _serve(path_in, path_out):
    """The Brian2 end: build, run, save spikes and times."""
    import brian2 as b2

    with np.load(path_in) as data:
        arrays = {key: data[key] for key in data.files}
    b2.prefs.codegen.target = str(arrays["target"])
    if str(arrays["cache_dir"]):  # a fresh directory makes the warm-up a cold Cython compile
        b2.prefs.codegen.runtime.cython.cache_dir = str(arrays["cache_dir"])
    start = time.perf_counter()
    objects = _load_export().build_brian2(b2, arrays)
    build_s = time.perf_counter() - start
    net, first_s = objects["network"], 0.0
    if float(arrays["warmup_ms"]) > 0:
        start = time.perf_counter()
        net.run(float(arrays["warmup_ms"]) * b2.ms)
        first_s = time.perf_counter() - start
    start = time.perf_counter()
    net.run(float(arrays["run_ms"]) * b2.ms)
    run_wall_s = time.perf_counter() - start
    # Network.run's own clock starts after before_run (code objects, spike queues): the loop alone
    run_s = getattr(b2.get_device(), "_last_run_time", run_wall_s)
    mon = objects["spikes"]
    np.savez(path_out, i=np.asarray(mon.i, np.int64),
             step=np.round(np.asarray(mon.t_) * 1000.0 / float(arrays["dt"])).astype(np.int64),
             build_s=build_s, first_s=first_s, run_s=run_s, run_wall_s=run_wall_s)


if __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2])
