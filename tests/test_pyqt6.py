"""All Qt code goes through qtpy: the GUI tests must pass under PyQt6 as well as PyQt5."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.gui
def test_widget_tests_pass_under_pyqt6():
    pytest.importorskip("PyQt6.QtCore")
    if os.environ.get("QT_API", "").lower() == "pyqt6":
        pytest.skip("this session already runs on PyQt6")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/widgets", "-q", "-o", "qt_api=pyqt6", "-p", "no:cacheprovider"],
        cwd=ROOT, env=os.environ | {"QT_API": "pyqt6"}, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout.splitlines()[-1]
