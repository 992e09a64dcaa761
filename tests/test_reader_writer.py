"""The npe2 reader and writers, called as napari calls them."""

from __future__ import annotations

import numpy as np
import tifffile

from napari_wbe._reader import get_reader
from napari_wbe._writer import write_image, write_labels, write_project
from napari_wbe.layer_data import volume_layer_data
from napari_wbe.project import is_project, open_project
from napari_wbe.volumes import open_volume, save_volume


def test_reader_declines_what_it_cannot_open(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    assert get_reader(str(tmp_path / "notes.txt")) is None
    assert get_reader([str(tmp_path / "a.tif"), str(tmp_path / "b.tif")]) is None


def test_reader_gives_scaled_layers_for_each_dataset(tmp_path, em_stack, label_stack):
    import h5py

    path = tmp_path / "cremi.hdf"
    with h5py.File(path, "w") as f:
        f.create_dataset("volumes/raw", data=em_stack).attrs["resolution"] = [40, 4, 4]
        f.create_dataset("volumes/labels/neuron_ids", data=label_stack.astype(np.uint64)).attrs["resolution"] = [
            40, 4, 4]
    layers = get_reader(str(path))(str(path))
    assert [(kw["name"], kind) for _, kw, kind in layers] == [
        ("cremi/volumes/labels/neuron_ids", "labels"), ("cremi/volumes/raw", "image")]
    assert all(kw["scale"] == (40.0, 4.0, 4.0) for _, kw, _ in layers)


def test_exm_channels_become_one_layer_each(tmp_path):
    rounds = np.zeros((6, 4, 20, 20), np.uint16)  # ImageJ hyperstacks order z before c
    path = tmp_path / "rounds.tif"
    tifffile.imwrite(path, rounds, imagej=True, metadata={"axes": "ZCYX"})
    [(data, kwargs, kind)] = get_reader(str(path))(str(path))
    assert kind == "image" and kwargs["channel_axis"] == 1 and len(kwargs["name"]) == 4
    assert kwargs["scale"] == (1.0, 1.0, 1.0) and kwargs["blending"] == "additive"


def test_multiscale_volume_layer(tmp_path, em_stack):
    save_volume(em_stack, tmp_path / "m.ome.zarr", voxel_size=(40, 8, 8), multiscale=2)
    [(data, kwargs, kind)] = volume_layer_data(open_volume(tmp_path / "m.ome.zarr"))
    assert kwargs["multiscale"] and len(data) == 2 and kwargs["contrast_limits"] == [0, 255]


def test_writers_keep_scale(tmp_path, em_stack, label_stack):
    attributes = {"name": "em", "scale": (40.0, 8.0, 8.0), "translate": (0.0, 0.0, 0.0), "metadata": {}}
    [written] = write_image(str(tmp_path / "em"), em_stack, attributes)
    assert written.endswith(".ome.zarr") and open_volume(written).voxel_size == (40.0, 8.0, 8.0)
    [written] = write_labels(str(tmp_path / "seg.zarr"), label_stack, attributes | {"name": "seg"})
    assert open_volume(written).kind == "labels"


def test_project_writer_and_reader(tmp_path, em_stack, label_stack):
    layer_data = [(em_stack, {"name": "em", "scale": (8.0, 8.0, 8.0), "metadata": {}}, "image"),
                  (label_stack, {"name": "seg", "scale": (8.0, 8.0, 8.0), "metadata": {}}, "labels")]
    [path] = write_project(str(tmp_path / "s.wbe"), layer_data)
    assert is_project(path) and set(open_project(path).labels) == {"seg"}
    layers = get_reader(path)(path)
    assert sorted(kind for _, _, kind in layers) == ["image", "labels"]
