"""OME-Zarr 0.4/0.5 and plain zarr v2/v3: reading, writing, pyramids, calibration."""

from __future__ import annotations

import json
import os

import dask.array as da
import numpy as np
import pytest
import zarr

from napari_wbe.formats.ome_writer import add_labels
from napari_wbe.volumes import Volume, VolumeError, detect_format, list_datasets, open_volume, save_volume


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_round_trip_keeps_voxel_size_and_pyramid(tmp_path, em_stack, version):
    path = tmp_path / "em.ome.zarr"
    save_volume(em_stack, path, voxel_size=(40, 8, 8), multiscale=3, ngff_version=version)
    vol = open_volume(path)
    assert vol.metadata["format"] == f"ome-zarr {version}"
    assert vol.voxel_size == (40.0, 8.0, 8.0)
    assert vol.metadata["voxel_size_source"] == "file"
    assert [lvl.shape for lvl in vol.levels] == [(12, 70, 90), (12, 35, 45), (12, 17, 22)]
    assert all(isinstance(lvl, da.Array) for lvl in vol.levels)
    np.testing.assert_array_equal(vol.levels[0].compute(), em_stack)
    # the second level averages 2x2 in y, x (z is coarse, so it waits a level)
    expected = em_stack[:, :70, :90].reshape(12, 35, 2, 45, 2).astype(float).mean(axis=(2, 4))
    np.testing.assert_allclose(vol.levels[1].compute(), np.round(expected), atol=1)


def test_zarr_v3_layout_for_ngff_05(tmp_path, em_stack):
    path = tmp_path / "v5.ome.zarr"
    save_volume(em_stack, path, voxel_size=8, ngff_version="0.5")
    meta = json.loads((path / "zarr.json").read_text())
    assert meta["zarr_format"] == 3
    assert meta["attributes"]["ome"]["version"] == "0.5"


def test_files_we_write_open_in_ome_zarr_py(tmp_path, em_stack):
    reader = pytest.importorskip("ome_zarr.reader")
    from ome_zarr.io import parse_url

    path = tmp_path / "em.ome.zarr"
    save_volume(em_stack, path, voxel_size=(40, 8, 8), multiscale=2)
    node = list(reader.Reader(parse_url(str(path)))())[0]
    assert [d.shape for d in node.data] == [(12, 70, 90), (12, 35, 45)]
    scales = [t[0]["scale"] for t in node.metadata["coordinateTransformations"]]
    assert scales == [[40.0, 8.0, 8.0], [40.0, 16.0, 16.0]]


def test_anisotropic_pyramid_halves_fine_axes_first(tmp_path):
    from napari_wbe.formats.ome_writer import pyramid_factors

    factors = pyramid_factors((100, 2048, 2048), "zyx", (40, 8, 8), multiscale=True)
    assert factors[0] == (1, 2, 2) and factors[1] == (1, 2, 2)
    assert factors[2] == (2, 2, 2)  # 40 nm z vs 32 nm y, x: now close enough to halve all


def test_labels_pyramid_picks_voxels_never_invents_ids(tmp_path, label_stack):
    path = tmp_path / "labels.ome.zarr"
    save_volume(label_stack, path, voxel_size=8, multiscale=3)
    vol = open_volume(path)
    assert vol.kind == "labels"
    for level in vol.levels:
        assert set(np.unique(level.compute())) <= {0, 7, 12}


def test_translation_and_units_are_read(tmp_path, em_stack):
    path = tmp_path / "um.zarr"
    group = zarr.open_group(path, mode="w", zarr_format=2)
    group.create_array("0", data=em_stack, chunks=(4, 32, 32))
    group.attrs["multiscales"] = [{
        "version": "0.4",
        "axes": [{"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"],
        "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [0.04, 0.008, 0.008]},
            {"type": "translation", "translation": [1.0, 0.5, 0.0]}]}],
    }]
    vol = open_volume(path)
    np.testing.assert_allclose(vol.voxel_size, (40, 8, 8))
    np.testing.assert_allclose(vol.metadata["translation"], (1000, 500, 0))


def test_ome_labels_group_is_listed_and_opened(tmp_path, em_stack, label_stack):
    path = tmp_path / "img.ome.zarr"
    save_volume(em_stack, path, voxel_size=8)
    add_labels(str(path), Volume(label_stack, "zyx", (8.0, 8.0, 8.0), "labels"), "neurons", "0.4")
    names = [d["name"] for d in list_datasets(path)]
    assert names == ["", "labels/neurons"]
    assert open_volume(path).metadata["labels"] == ["labels/neurons"]
    labels = open_volume(path, dataset="labels/neurons")
    assert labels.kind == "labels"
    np.testing.assert_array_equal(labels.levels[0].compute(), label_stack)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_plain_zarr_arrays_and_groups(tmp_path, em_stack, label_stack, zarr_format):
    array_path = tmp_path / f"raw_v{zarr_format}.zarr"
    arr = zarr.create_array(array_path, shape=em_stack.shape, dtype=em_stack.dtype, chunks=(4, 32, 32),
                            zarr_format=zarr_format)
    arr[:] = em_stack
    arr.attrs["resolution"] = [30, 4, 4]
    assert detect_format(array_path) == "zarr"
    vol = open_volume(array_path)
    assert vol.kind == "em" and vol.voxel_size == (30.0, 4.0, 4.0)
    assert vol.metadata["format"] == f"zarr v{zarr_format}"
    np.testing.assert_array_equal(vol.data.compute(), em_stack)

    group_path = tmp_path / f"group_v{zarr_format}.zarr"
    group = zarr.open_group(group_path, mode="w", zarr_format=zarr_format)
    group.create_array("volumes/raw", data=em_stack, chunks=(4, 32, 32))
    group.create_array("volumes/labels/neuron_ids", data=label_stack, chunks=(4, 32, 32))
    with pytest.raises(VolumeError, match="several volumes.*volumes/raw.*dataset="):
        open_volume(group_path)
    labels = open_volume(group_path, dataset="volumes/labels/neuron_ids")
    assert labels.kind == "labels"


def test_volume_bigger_than_memory_opens_lazily(tmp_path):
    """A 1 TB array (chunks never written) opens and serves a slice without loading."""
    path = tmp_path / "huge.zarr"
    zarr.create_array(path, shape=(10_000, 10_000, 10_000), dtype="uint8", chunks=(1, 512, 512),
                      fill_value=0, zarr_format=2)
    vol = open_volume(path, voxel_size=8)
    assert vol.shape == (10_000, 10_000, 10_000)
    assert vol.data[5000, :512, :512].compute().sum() == 0


def test_corrupt_chunk_names_file_and_fix(tmp_path, em_stack):
    path = tmp_path / "broken.zarr"
    arr = zarr.create_array(path, shape=em_stack.shape, dtype=em_stack.dtype, chunks=(4, 70, 90), zarr_format=2,
                            )
    arr[:] = em_stack
    chunk = next(p for p in sorted(path.rglob("*")) if p.is_file() and not p.name.startswith("."))
    chunk.write_bytes(chunk.read_bytes()[:10])  # an interrupted copy
    vol = open_volume(path)
    with pytest.raises(VolumeError, match="damaged or truncated.*copy it again"):
        vol.data.compute()


def test_save_refuses_to_overwrite_and_leaves_no_temporary_folder(tmp_path, em_stack):
    path = tmp_path / "em.ome.zarr"
    save_volume(em_stack, path, voxel_size=8)
    with pytest.raises(VolumeError, match="already exists.*overwrite=True"):
        save_volume(em_stack, path, voxel_size=8)
    save_volume(em_stack[:, ::2, ::2], path, voxel_size=16, overwrite=True)
    assert open_volume(path).shape == (12, 35, 45)
    assert sorted(os.listdir(tmp_path)) == ["em.ome.zarr"]


def test_save_reports_progress(tmp_path, em_stack):
    reports = []
    save_volume(em_stack, tmp_path / "p.ome.zarr", voxel_size=8, multiscale=2,
                progress=lambda done, total: reports.append((done, total)))
    assert reports and reports[-1] == (1000, 1000)
    assert [d for d, _ in reports] == sorted(d for d, _ in reports)
