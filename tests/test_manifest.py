"""The npe2 manifest is valid, every python_name imports, and the core needs no Qt."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

npe2 = pytest.importorskip("npe2")

MANIFEST = Path(__file__).resolve().parents[1] / "napari_wbe" / "napari.yaml"
CORE_MODULES = ["napari_wbe.volumes", "napari_wbe.phantom", "napari_wbe.project", "napari_wbe.connectome",
                "napari_wbe.barcodes", "napari_wbe.barcode_fragments", "napari_wbe.chunked_labels",
                "napari_wbe.layer_data", "napari_wbe._reader", "napari_wbe._writer"]


def test_manifest_validates_and_is_registered():
    manifest = npe2.PluginManifest.from_file(MANIFEST)
    assert manifest.name == "napari-wbe"
    installed = npe2.PluginManifest.from_distribution("napari-wbe")
    assert {c.id for c in installed.contributions.commands} == {c.id for c in manifest.contributions.commands}


@pytest.mark.parametrize("command", npe2.PluginManifest.from_file(MANIFEST).contributions.commands,
                         ids=lambda c: c.id)
def test_every_python_name_imports(command):
    module, _, attribute = command.python_name.partition(":")
    assert callable(getattr(importlib.import_module(module), attribute))


def test_core_modules_import_without_qt_or_napari():
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'napari', 'magicgui'):\n"
        "            raise ImportError('core must not import ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        + "".join(f"import {m}\n" for m in CORE_MODULES)
    )
    result = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
