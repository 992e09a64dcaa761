"""GUI tests run in a real napari viewer (pytest-qt), under Xvfb where there is no display."""

from __future__ import annotations

import os

import numpy as np
import pytest

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
