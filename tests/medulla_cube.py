"""The FlyEM medulla cube as numpy arrays (EM, watershed fragments, proofread bodies), for
the proofreading tests. The gzipped HDF5 files are unpacked into a temporary folder."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np

from napari_wbe.volumes import open_volume


def gunzip(source: Path, folder: Path) -> Path:
    target = folder / source.name.removesuffix(".gz")
    if not target.exists():
        with gzip.open(source) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return target


def bodies(path: Path) -> np.ndarray:
    """A FlyEM `stack` mapped through its `transforms` (supervoxel -> body) table."""
    return np.asarray(open_volume(path).data)


def load(shared_data: Path, folder: Path) -> dict[str, np.ndarray]:
    medulla = shared_data / "fibsem_medulla"
    return {
        "em": open_volume(medulla / "grayscale_maps").data.compute(),
        "fragments": bodies(gunzip(medulla / "oversegmented_stack_labels.h5.gz", folder)),
        "truth": bodies(gunzip(medulla / "groundtruth.h5.gz", folder)),
    }
