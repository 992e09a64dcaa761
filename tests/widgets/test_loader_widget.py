"""The loader dock widget: detect, calibrate, load in the background, report errors."""

from __future__ import annotations

import h5py
import numpy as np
import tifffile

from napari_wbe.widgets.loader import LoaderWidget

from .conftest import not_blank, save_screenshot


def _loader(viewer, qtbot) -> LoaderWidget:
    widget = LoaderWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Load volume")
    return widget


def _load_and_wait(widget, qtbot, viewer, n_layers):
    widget.load.native.click()
    qtbot.waitUntil(lambda: widget.load.enabled, timeout=20_000)
    assert len(viewer.layers) == n_layers, widget.status.text


def test_calibrated_tiff_is_detected_prefilled_and_loaded(viewer, qtbot, tmp_path, em_stack):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, em_stack, imagej=True, resolution=(1 / 0.004, 1 / 0.004),
                     metadata={"spacing": 0.03, "unit": "micron", "axes": "ZYX"})
    widget = _loader(viewer, qtbot)
    widget.path.value = path
    assert widget.format.value == "tiff"
    assert widget.voxel_size.value == "30, 4, 4" and widget.voxel_source.value == "from the file"
    _load_and_wait(widget, qtbot, viewer, 1)
    layer = viewer.layers[0]
    np.testing.assert_allclose(layer.scale, (30, 4, 4))
    world = layer.extent.world  # anisotropy shows: z spans 11 steps of 30 nm, y and x steps of 4
    np.testing.assert_allclose(world[1] - world[0], (np.array(em_stack.shape) - 1) * (30, 4, 4))
    assert viewer.dims.axis_labels == ("z", "y", "x")
    assert "Loaded 1 layer" in widget.status.text
    viewer.reset_view()
    assert not_blank(viewer.screenshot(canvas_only=True, flash=False))


def test_expansion_factor_gives_tissue_units(viewer, qtbot, tmp_path):
    path = tmp_path / "exm.tif"
    tifffile.imwrite(path, np.ones((3, 5, 30, 30), np.uint16), imagej=True, metadata={"axes": "ZCYX"})
    widget = _loader(viewer, qtbot)
    widget.path.value = path
    widget.voxel_size.value = "400, 200, 200"
    widget.expansion.value = "4"
    _load_and_wait(widget, qtbot, viewer, 5)
    np.testing.assert_allclose(viewer.layers[0].scale, (100, 50, 50))


def test_container_datasets_are_listed_and_chosen(viewer, qtbot, tmp_path, em_stack, label_stack):
    path = tmp_path / "cremi.hdf"
    with h5py.File(path, "w") as f:
        f.create_dataset("volumes/raw", data=em_stack).attrs["resolution"] = [40, 4, 4]
        f.create_dataset("volumes/labels/neuron_ids", data=label_stack.astype(np.uint64))
    widget = _loader(viewer, qtbot)
    widget.path.value = path
    assert list(widget.dataset.choices) == ["volumes/labels/neuron_ids", "volumes/raw"]
    widget.dataset.value = "volumes/labels/neuron_ids"
    widget.voxel_size.value = "40, 4, 4"
    widget.in_memory.value = True  # so it can be painted on
    _load_and_wait(widget, qtbot, viewer, 1)
    layer = viewer.layers[0]
    assert layer.__class__.__name__ == "Labels" and isinstance(layer.data, np.ndarray)
    np.testing.assert_allclose(layer.scale, (40, 4, 4))


def test_errors_are_shown_in_the_widget_and_nothing_is_added(viewer, qtbot, tmp_path, em_stack):
    widget = _loader(viewer, qtbot)
    (tmp_path / "notes.txt").write_text("not a volume")
    widget.path.value = tmp_path / "notes.txt"
    assert "Cannot tell the format" in widget.status.text
    assert "ff6b6b" in widget.status.message.native.styleSheet()

    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, em_stack)
    widget.path.value = path
    widget.expansion.value = "0"
    _load_and_wait(widget, qtbot, viewer, 0)
    assert "expansion_factor must be > 0" in widget.status.text
    widget.expansion.value = "1"
    widget.voxel_size.value = "8, eight, 8"
    _load_and_wait(widget, qtbot, viewer, 0)
    assert "voxel_size must be numbers" in widget.status.text
    save_screenshot(widget.render(), "loader_error.png")


def test_real_slice_folder_loads_lazily(viewer, qtbot, shared_data):
    widget = _loader(viewer, qtbot)
    widget.path.value = shared_data / "fibsem_medulla" / "grayscale_maps"
    assert widget.format.value == "slices"
    assert widget.voxel_source.value == "not in the file: enter it"
    widget.voxel_size.value = "10"
    _load_and_wait(widget, qtbot, viewer, 1)
    layer = viewer.layers[0]
    assert type(layer.data).__module__.startswith("dask") and layer.data.shape == (250, 250, 250)
    viewer.reset_view()
    qtbot.wait(50)
    assert not_blank(viewer.screenshot(canvas_only=True, flash=False))
    save_screenshot(viewer.screenshot(canvas_only=False, flash=False), "loader_fibsem.png")


def test_cancel_stops_a_load_into_memory(viewer, qtbot, tmp_path):
    import zarr

    path = tmp_path / "big.zarr"
    array = zarr.create_array(path, shape=(400, 512, 512), dtype="uint8", chunks=(1, 512, 512), zarr_format=2)
    array[:] = np.random.default_rng(0).integers(0, 255, (400, 512, 512), dtype=np.uint8)
    widget = _loader(viewer, qtbot)
    widget.path.value = path
    widget.in_memory.value = True
    widget.load.native.click()
    assert widget.cancel.enabled
    widget.cancel.native.click()
    qtbot.waitUntil(lambda: widget.load.enabled, timeout=30_000)
    assert widget.status.text == "Cancelled." and len(viewer.layers) == 0
