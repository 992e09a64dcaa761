"""Project dock widget: save every layer as one project folder, or open one."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from magicgui.widgets import Container, FileEdit, PushButton

from ..project import open_project, project_from_layer_data, project_layer_data, save_project
from ._jobs import JobHost
from ._layers import add_layer_data
from ._status import StatusArea

if TYPE_CHECKING:
    import napari


class ProjectWidget(JobHost, Container):
    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self._viewer = napari_viewer
        self.folder = FileEdit(label="Project folder", mode="d", value="", tooltip="e.g. my_brain.wbe")
        self.open_button = PushButton(text="Open project")
        self.save_button = PushButton(text="Save all layers as project")
        self.status = StatusArea()
        self.extend([self.folder, self.open_button, self.save_button, self.status])
        self.open_button.changed.connect(self.open)
        self.save_button.changed.connect(self.save)

    def open(self):
        path = os.fspath(self.folder.value)
        return self.start_job(lambda report: project_layer_data(open_project(path)), "Opening project", self._opened)

    def save(self):
        path = os.fspath(self.folder.value)
        layer_data = [layer.as_layer_data_tuple() for layer in self._viewer.layers]
        if not layer_data:
            self.status.done("There are no layers to save.", error=True)
            return None
        project = project_from_layer_data(layer_data)  # save_project checks it before writing
        return self.start_job(lambda report: save_project(project, path, report), "Saving project", self._saved)

    def busy_buttons(self) -> list:
        return [self.open_button, self.save_button]

    def _opened(self, layer_data) -> None:
        layers = add_layer_data(self._viewer, layer_data)
        self.status.done(f"Opened {len(layers)} layer(s).")

    def _saved(self, path: str) -> None:
        self.status.done(f"Saved to {path}.")
