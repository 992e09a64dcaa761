"""The C. elegans hermaphrodite connectome, read from the data file the c302 package ships.

c302 0.12.1 ships ``c302/data/herm_full_edgelist.csv`` (Source, Target, Weight, Type;
448 cells, 4,681 chemical edges carrying 27,019 synapses, 2,698 electrical edges). The
file is read where pip put it, without importing c302: importing it needs pyNeuroML,
cect and their many dependencies (cect pins numpy below 2.4), none of which this data
needs. Hence no install extra: ``pip install --no-deps c302==0.12.1`` is enough, or a
downloaded wheel can be passed as the path. Nothing is downloaded at run time.

Cells are numbered 1..448 in name order; ``neurons["name"]`` keeps the names. Gap
junctions are symmetric; the file lists most of them once per direction (A->B and B->A,
each with a weight), and they are kept exactly as listed, as directed edges of kind
"electrical", so counts match the source. The file has no transmitter names: nt is
missing and sign 0 for every edge.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import os
import zipfile

import pandas as pd

from .connectome_formats import edgelist_from_table
from .connectome_tables import Connectome, ConnectomeError

C302_VERSION = "0.12.1"
DATA_FILE = "c302/data/herm_full_edgelist.csv"
INSTALL_HINT = (
    f"Install the c302 data without its heavy dependencies: `pip install --no-deps c302=={C302_VERSION}` "
    f"(3.8 MB; napari-wbe only reads its data file), or `pip download --no-deps c302=={C302_VERSION}` "
    "and pass the wheel: celegans('c302-0.12.1-py3-none-any.whl').")


def installed_data_file() -> str | None:
    """The installed c302's herm_full_edgelist.csv, found without importing c302."""
    try:
        located = importlib.metadata.distribution("c302").locate_file(DATA_FILE)
        if os.path.isfile(located):
            return os.fspath(located)
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec("c302")  # finds the folder; runs none of its code
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = os.path.join(folder, "data", os.path.basename(DATA_FILE))
        if os.path.isfile(candidate):
            return candidate
    return None


def _read_source(path: str) -> bytes:
    if path.endswith(".whl") or zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as wheel:
            if DATA_FILE not in wheel.namelist():
                raise ConnectomeError(f"{path} does not contain {DATA_FILE}. {INSTALL_HINT}")
            return wheel.read(DATA_FILE)
    if os.path.isdir(path):
        path = os.path.join(path, os.path.basename(DATA_FILE))
    with open(path, "rb") as f:
        return f.read()


def celegans(path=None) -> Connectome:
    """The C. elegans hermaphrodite connectome (chemical and electrical edges via `kind`).

    path: None reads the file from the installed c302 package; otherwise the CSV itself,
    a folder holding it, or a c302 wheel (.whl).
    """
    path = installed_data_file() if path is None else os.fspath(path)
    if path is None:
        raise ConnectomeError(f"The C. elegans sample reads {DATA_FILE} from the c302 package, "
                              f"which is not installed. {INSTALL_HINT}")
    if not os.path.exists(path):
        raise ConnectomeError(f"{path} does not exist. {INSTALL_HINT}")
    table = pd.read_csv(io.BytesIO(_read_source(path)), engine="pyarrow")
    cx = edgelist_from_table(table, path)
    cx.report.update({"source": path, "species": "Caenorhabditis elegans (hermaphrodite)",
                      "electrical": "one directed row per direction the source lists"})
    return cx
