"""N5, HDF5, TIFF and slice folders; calibration, ExM expansion and channel axes."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import tensorstore as ts
import tifffile
from PIL import Image

from napari_wbe.volumes import VolumeError, detect_format, list_datasets, open_volume


def write_n5(folder, array: np.ndarray, attrs: dict | None = None):
    """An N5 dataset as Java tools write it: dimensions listed x, y, z."""
    store = ts.open({
        "driver": "n5", "kvstore": {"driver": "file", "path": str(folder)}, "create": True,
        "metadata": {"dimensions": list(array.shape[::-1]), "blockSize": [32, 32, 4],
                     "dataType": str(array.dtype), "compression": {"type": "gzip"}},
    }).result()
    store.write(array.T).result()
    if attrs:
        import json

        meta = json.loads((folder / "attributes.json").read_text())
        (folder / "attributes.json").write_text(json.dumps(meta | attrs))


def test_n5_dataset_in_zyx_order_with_xyz_resolution(tmp_path, em_stack):
    root = tmp_path / "sample.n5"
    write_n5(root / "raw", em_stack, {"resolution": [4, 4, 30]})
    (root / "attributes.json").write_text('{"n5": "2.0.0"}')
    assert detect_format(root) == "n5"
    vol = open_volume(root)
    assert vol.shape == em_stack.shape and vol.voxel_size == (30.0, 4.0, 4.0)
    np.testing.assert_array_equal(vol.data.compute(), em_stack)


def test_n5_multiscale_group(tmp_path, em_stack):
    root = tmp_path / "pyramid.n5"
    write_n5(root / "raw" / "s0", em_stack)
    write_n5(root / "raw" / "s1", em_stack[:, ::2, ::2].copy())
    (root / "raw" / "attributes.json").write_text('{"pixelResolution": {"dimensions": [8, 8, 40], "unit": "nm"}}')
    assert [d["name"] for d in list_datasets(root)] == ["raw"]
    vol = open_volume(root)
    assert vol.multiscale and [lvl.shape for lvl in vol.levels] == [(12, 70, 90), (12, 35, 45)]
    assert vol.voxel_size == (40.0, 8.0, 8.0)


def test_cremi_style_hdf5(tmp_path, em_stack, label_stack):
    path = tmp_path / "sample_A.hdf"
    with h5py.File(path, "w") as f:
        f.create_dataset("volumes/raw", data=em_stack, chunks=(4, 32, 32)).attrs["resolution"] = [40.0, 4.0, 4.0]
        f.create_dataset("volumes/labels/neuron_ids", data=label_stack.astype(np.uint64)).attrs["resolution"] = [
            40.0, 4.0, 4.0]
    with pytest.raises(VolumeError, match="several volumes.*volumes/labels/neuron_ids.*dataset="):
        open_volume(path)
    raw = open_volume(path, dataset="volumes/raw")
    assert raw.kind == "em" and raw.voxel_size == (40.0, 4.0, 4.0)
    labels = open_volume(path, dataset="volumes/labels/neuron_ids")
    assert labels.kind == "labels"
    with pytest.raises(VolumeError, match="no dataset 'volumes/nope'"):
        open_volume(path, dataset="volumes/nope")


def test_flyem_stack_with_transforms_maps_supervoxels_to_bodies(tmp_path):
    supervoxels = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    table = np.array([[i, 100 + i // 6] for i in range(1, 24)], dtype=np.int64)  # 0 stays 0
    path = tmp_path / "groundtruth.h5"
    with h5py.File(path, "w") as f:
        f["stack"] = supervoxels
        f["transforms"] = table
    assert [d["name"] for d in list_datasets(path)] == ["stack"]
    bodies = open_volume(path).data.compute()
    assert set(np.unique(bodies)) == {0, 100, 101, 102, 103}
    raw = open_volume(path, apply_transforms=False)
    np.testing.assert_array_equal(raw.data.compute(), supervoxels)


def test_imagej_tiff_calibration(tmp_path, em_stack):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, em_stack, imagej=True, resolution=(1 / 0.004, 1 / 0.004),
                     metadata={"spacing": 0.03, "unit": "micron", "axes": "ZYX"})
    vol = open_volume(path)
    np.testing.assert_allclose(vol.voxel_size, (30, 4, 4))
    np.testing.assert_array_equal(vol.data.compute(), em_stack)


def test_ome_tiff_channels_are_recognised(tmp_path):
    rounds = np.random.default_rng(1).integers(0, 4000, (5, 6, 40, 50), dtype=np.uint16)
    path = tmp_path / "rounds.ome.tif"
    tifffile.imwrite(path, rounds, ome=True,
                     metadata={"axes": "CZYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2, "PhysicalSizeZ": 0.4})
    vol = open_volume(path, expansion_factor=4)
    assert vol.axes == "czyx" and vol.channel_axis == 0 and vol.kind == "exm"
    np.testing.assert_allclose(vol.voxel_size, (100, 50, 50))  # tissue units: raw / 4
    np.testing.assert_allclose(vol.metadata["raw_voxel_size"], (400, 200, 200))


def test_plain_multipage_tiff_without_calibration_asks_for_voxel_size(tmp_path, em_stack):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, em_stack)
    vol = open_volume(path)
    assert vol.voxel_size == (1.0, 1.0, 1.0) and vol.metadata["voxel_size_source"] == "default"
    assert open_volume(path, voxel_size=(50, 5, 5)).voxel_size == (50.0, 5.0, 5.0)


def test_channel_axis_can_be_chosen(tmp_path):
    array = np.zeros((20, 30, 4, 40), dtype=np.uint16)  # z, y, c, x: an unusual writer
    path = tmp_path / "odd.tif"
    tifffile.imwrite(path, array)
    vol = open_volume(path, channel_axis=2)
    assert vol.channel_axis == 2 and vol.kind == "exm"


def test_slice_folder_sorted_naturally(tmp_path):
    folder = tmp_path / "slices"
    folder.mkdir()
    for z in (1, 2, 10):  # a plain sort would put 10 before 2
        Image.fromarray(np.full((16, 20), z, dtype=np.uint8)).save(folder / f"slice_{z}.png")
    assert detect_format(folder) == "slices"
    vol = open_volume(folder, voxel_size=10)
    assert [int(v) for v in vol.data[:, 0, 0].compute()] == [1, 2, 10]


def test_ragged_slice_folder_names_the_odd_slices(tmp_path):
    folder = tmp_path / "ragged"
    folder.mkdir()
    Image.fromarray(np.zeros((16, 20), np.uint8)).save(folder / "a1.png")
    Image.fromarray(np.zeros((16, 20), np.uint8)).save(folder / "a2.png")
    Image.fromarray(np.zeros((18, 20), np.uint8)).save(folder / "a3.png")
    with pytest.raises(VolumeError, match="differ in size.*a3.png.*same size"):
        open_volume(folder)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"voxel_size": "eight"}, "voxel_size must be numbers"),
        ({"voxel_size": (8, "x", 8)}, "voxel_size must be numbers"),
        ({"voxel_size": (8, -1, 8)}, "positive"),
        ({"voxel_size": (8, 8)}, "2 values but the volume has 3"),
        ({"expansion_factor": 0}, "expansion_factor must be > 0"),
        ({"expansion_factor": -4}, "expansion_factor must be > 0"),
        ({"expansion_factor": "four"}, "expansion_factor must be a number"),
        ({"kind": "labels"}, "labels must be integers"),
        ({"kind": "mri"}, "kind must be one of"),
    ],
)
def test_bad_arguments_explain_the_fix(tmp_path, kwargs, message):
    path = tmp_path / "float.tif"
    tifffile.imwrite(path, np.zeros((4, 8, 8), np.float32), photometric="minisblack")
    with pytest.raises(VolumeError, match=message):
        open_volume(path, **kwargs)


def test_missing_and_unknown_paths(tmp_path):
    with pytest.raises(VolumeError, match="No file or folder"):
        open_volume(tmp_path / "nope.zarr")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(VolumeError, match="Cannot tell the format.*OME-Zarr"):
        open_volume(tmp_path / "notes.txt")
    (tmp_path / "x.h5.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(VolumeError, match="gunzip"):
        open_volume(tmp_path / "x.h5.gz")


def test_opening_writes_nothing(tmp_path, em_stack):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, em_stack)
    before = sorted(p.name for p in tmp_path.iterdir())
    for bad in ({"expansion_factor": 0}, {"kind": "labels", "voxel_size": "?"}):
        with pytest.raises(VolumeError):
            open_volume(path, **bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
