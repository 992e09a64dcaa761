"""GUI tests run in a real napari viewer (pytest-qt), under Xvfb where there is no display."""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pytest
from napari.utils.interactions import mouse_press_callbacks, mouse_release_callbacks

SCREENSHOTS = os.environ.get("WBE_SCREENSHOTS")  # a folder to keep screenshots in, e.g. docs/


def save_screenshot(image: np.ndarray, name: str) -> None:
    """Keep a screenshot for the README when WBE_SCREENSHOTS names a folder."""
    if SCREENSHOTS:
        import imageio.v3 as iio

        os.makedirs(SCREENSHOTS, exist_ok=True)
        iio.imwrite(os.path.join(SCREENSHOTS, name), image)


def not_blank(image: np.ndarray) -> bool:
    rgb = image[..., :3].astype(float)
    return rgb.std() > 10 and len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50


@pytest.fixture
def viewer(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1400, 850)  # room for the docked widgets in screenshots
    return viewer


def click(viewer, layer, voxel, shift=False):
    """A mouse click (press and release, no drag) on a voxel of a layer, as napari sends it."""
    event = SimpleNamespace(type="mouse_press", position=tuple(layer.data_to_world(voxel)),
                            modifiers=("Shift",) if shift else (), view_direction=None,
                            dims_displayed=list(viewer.dims.displayed))
    mouse_press_callbacks(layer, event)
    event.type = "mouse_release"
    mouse_release_callbacks(layer, event)
