"""Loader dock widget: pick a file or folder, check what was found, load it at its true scale."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, Label, LineEdit, PushButton

from ..formats.common import VolumeError
from ..layer_data import volume_layer_data
from ..volumes import Volume, detect_format, list_datasets, load_into_memory, open_volume
from ._jobs import JobHost
from ._layers import add_layer_data
from ._status import StatusArea

if TYPE_CHECKING:
    import napari

KIND_CHOICES = ["auto", "em", "exm", "labels"]
CHANNEL_CHOICES = ["auto", "0", "1", "2", "3"]


class LoaderWidget(JobHost, Container):
    """Path -> detected format and datasets -> calibration -> layers."""

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self._viewer = napari_viewer
        self.path = FileEdit(label="Path", mode="r", tooltip="A file; use 'Folder…' for zarr, N5 and slice folders")
        self.pick_folder = PushButton(text="Folder…")
        self.format = Label(label="Format", value="–")
        self.dataset = ComboBox(label="Dataset", choices=[])
        self.found = Label(label="Found", value="")
        self.voxel_size = LineEdit(label="Voxel size (nm)", value="", tooltip="z, y, x in nm, or one number")
        self.voxel_source = Label(label=" ", value="")
        self.expansion = LineEdit(label="Expansion", value="1", tooltip="ExM expansion factor; 1 for EM")
        self.kind = ComboBox(label="Kind", choices=KIND_CHOICES, value="auto")
        self.channel_axis = ComboBox(label="Channel axis", choices=CHANNEL_CHOICES, value="auto")
        self.in_memory = CheckBox(text="Load into memory (to paint labels)", value=False)
        self.load = PushButton(text="Load")
        self.cancel = PushButton(text="Cancel", enabled=False)
        self.status = StatusArea()
        self.extend([
            self.path, self.pick_folder, self.format, self.dataset, self.found, self.voxel_size,
            self.voxel_source, self.expansion, self.kind, self.channel_axis, self.in_memory,
            self.load, self.cancel, self.status,
        ])
        self.path.changed.connect(self._probe)
        self.pick_folder.changed.connect(self._choose_folder)
        self.dataset.changed.connect(self._describe_dataset)
        self.load.changed.connect(self.start_loading)
        self.cancel.changed.connect(self.cancel_job)

    # --- probing: what is at this path -------------------------------------------------
    def _choose_folder(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self.native, "Choose a zarr, N5 or slice folder")
        if folder:
            self.path.value = folder

    def _probe(self) -> None:
        path = str(self.path.value)
        self.status.say("")
        try:
            fmt = detect_format(path)
            datasets = list_datasets(path)
        except VolumeError as err:
            self.format.value = "–"
            self.dataset.choices = []
            self.status.say(str(err), error=True)
            return
        self.format.value = fmt
        names = [d["name"] for d in datasets]
        self.dataset.choices = [(name or "(the whole file)", name) for name in names]
        self.dataset.enabled = len(names) > 1
        if names:
            self.dataset.value = names[0]
        self._describe_dataset()

    def _describe_dataset(self) -> None:
        try:
            vol = open_volume(str(self.path.value), dataset=self.dataset.value or None)
        except VolumeError as err:
            self.status.say(str(err), error=True)
            return
        self.found.value = f"{vol.kind}, {vol.axes} {vol.shape} {vol.dtype}" + (
            f", {len(vol.levels)} levels" if vol.multiscale else ""
        )
        raw = vol.metadata.get("raw_voxel_size", vol.voxel_size)
        self.voxel_size.value = ", ".join(f"{v:g}" for v in raw)
        source = vol.metadata.get("voxel_size_source")
        self.voxel_source.value = "from the file" if source == "file" else "not in the file: enter it"
        self.kind.value = "auto"
        self.status.say("")

    # --- loading -----------------------------------------------------------------------
    def options(self) -> dict:
        """The open_volume arguments the form describes (raises VolumeError on bad text)."""
        sizes = [s for s in re.split(r"[,\sx×]+", self.voxel_size.value.strip()) if s]
        return {
            "path": os.fspath(self.path.value),
            "dataset": self.dataset.value or None,
            "voxel_size": sizes or None,
            "expansion_factor": self.expansion.value.strip(),
            "kind": None if self.kind.value == "auto" else self.kind.value,
            "channel_axis": None if self.channel_axis.value == "auto" else int(self.channel_axis.value),
        }

    def start_loading(self):
        options = self.options()
        in_memory = self.in_memory.value

        def work(report) -> Volume:
            vol = open_volume(**options)
            return load_into_memory(vol, report) if in_memory else vol

        return self.start_job(work, f"Loading {os.path.basename(options['path'])}", self._loaded)

    def _loaded(self, vol: Volume) -> None:
        layers = add_layer_data(self._viewer, volume_layer_data(vol))
        size = " x ".join(f"{v:g}" for v in vol.voxel_size)
        self.status.done(f"Loaded {len(layers)} layer(s) at {size} nm per voxel.")

    def busy_buttons(self) -> list:
        return [self.load]
