"""The real FIB-SEM volumes in ../shared/data (skipped when that folder is absent)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_wbe.volumes import list_datasets, open_volume, save_volume

pytestmark = pytest.mark.realdata


def test_medulla_png_slices(shared_data):
    vol = open_volume(shared_data / "fibsem_medulla" / "grayscale_maps", voxel_size=10)
    assert vol.metadata["format"] == "slices" and vol.kind == "em"
    assert vol.shape == (250, 250, 250) and vol.dtype == np.uint8
    assert vol.metadata["first_slice"] == "iso.2600.png"
    middle = vol.data[125].compute()
    assert 60 < middle.mean() < 200 and middle.std() > 10  # real EM contrast, not a blank


def test_medulla_groundtruth_maps_supervoxels_to_526_bodies(medulla_groundtruth):
    assert [d["name"] for d in list_datasets(medulla_groundtruth)] == ["stack"]
    bodies = open_volume(medulla_groundtruth, voxel_size=10)
    assert bodies.kind == "labels" and bodies.metadata["transforms"] == "applied"
    ids = np.unique(bodies.data.compute())
    assert len(ids) == 526  # the data README's count: 525 bodies plus id 0 (unassigned voxels)
    supervoxels = open_volume(medulla_groundtruth, apply_transforms=False).data.compute()
    assert len(np.unique(supervoxels)) == 21_317


@pytest.mark.parametrize("name", ["train-gt.lzf.h5", "train-ws.lzf.h5", "train-p1.lzf.h5", "train-image.h5"])
def test_gala_crop_including_lzf(shared_data, name):
    vol = open_volume(shared_data / "fibsem_small" / name)
    assert vol.shape == (50, 100, 200)
    expected_kind = {"train-gt.lzf.h5": "labels", "train-ws.lzf.h5": "labels"}.get(name, "em")
    assert vol.kind == expected_kind
    data = vol.data.compute()
    if name == "train-gt.lzf.h5":
        assert len(np.unique(data)) >= 88


def test_real_labels_round_trip_through_ome_zarr(shared_data, tmp_path):
    gt = open_volume(shared_data / "fibsem_small" / "train-gt.lzf.h5", voxel_size=10)
    save_volume(gt, tmp_path / "gt.ome.zarr", multiscale=2)
    back = open_volume(tmp_path / "gt.ome.zarr")
    assert back.kind == "labels" and back.voxel_size == (10.0, 10.0, 10.0) and len(back.levels) == 2
    np.testing.assert_array_equal(back.levels[0].compute(), gt.data.compute())
