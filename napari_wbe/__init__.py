"""napari-wbe: whole-brain emulation research inside napari.

Core modules (volumes, phantom, project, connectome, ...) import neither Qt nor napari,
so scripts, notebooks and dask workers use them without a display.
"""

__version__ = "0.1.0"
