"""Shared fixtures: the real FIB-SEM data beside the repo, and small synthetic volumes."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real FIB-SEM data not found at {SHARED_DATA} (it sits beside the repo in CI)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def medulla_groundtruth(shared_data, tmp_path_factory) -> Path:
    """groundtruth.h5 of the medulla cube, gunzipped once per test session."""
    target = tmp_path_factory.mktemp("medulla") / "groundtruth.h5"
    with gzip.open(shared_data / "fibsem_medulla" / "groundtruth.h5.gz") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return target


@pytest.fixture
def em_stack() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, size=(12, 70, 90), dtype=np.uint8)


@pytest.fixture
def label_stack() -> np.ndarray:
    labels = np.zeros((12, 70, 90), dtype=np.uint32)
    labels[2:8, 10:40, 10:50] = 7
    labels[3:10, 30:60, 40:80] = 12
    return labels


def pytest_collection_modifyitems(items):
    # GUI tests live in tests/widgets/; mark them so `-m "not gui"` runs the core alone.
    for item in items:
        if f"{os.sep}widgets{os.sep}" in str(item.fspath):
            item.add_marker(pytest.mark.gui)
