"""Spike-for-spike parity of the float64 engine with Brian2 itself.

brian2 2.9 does not import with numpy >= 2.4, so it runs in its own interpreter, named by
WBE_BRIAN2_PYTHON (CI builds one: see .ci/run); without it this test skips and says how.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

BRIAN2_PYTHON = os.environ.get("WBE_BRIAN2_PYTHON")
pytestmark = pytest.mark.skipif(
    not BRIAN2_PYTHON,
    reason='set WBE_BRIAN2_PYTHON to a Python with brian2 (python -m venv v; v/bin/pip install "numpy<2.4" brian2==2.9.0)',
)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_float64_engine_equals_brian2_spike_for_spike(seed):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from brian2_parity import compare

    # 1,000 neurons, mixed signs, strong activity, 1 s of explicit kicks on 200 of them
    assert compare(1000, seed, BRIAN2_PYTHON, "numpy")
