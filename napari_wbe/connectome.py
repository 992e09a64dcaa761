"""The connectome: who synapses onto whom, built from labels or read from a file.

    from napari_wbe import connectome
    cx = connectome.from_segmentation(labels, synapses)     # numpy, dask or zarr labels
    cx = connectome.read("connections.csv")                  # FlyWire Codex, Shiu, edge list, ours
    cx.write("circuit.connectome")                           # neurons.parquet + edges.parquet
    cx.neurons                  # index neuron id (int64): size, centroid, type, nt, sign, degrees...
    cx.edges                    # pre, post, syn_count, nt, sign, kind ("chemical" | "electrical")
    cx.partners(42, direction="in", min_syn=5)               # strongest inputs first
    cx.downstream([42], hops=2); cx.shortest_path(42, 7)
    matrix, ids = cx.adjacency(min_syn=5, signed=True); cx.type_matrix(by="type")
    worm = connectome.celegans()                             # needs the c302 data file

Sign from transmitter: NT_SIGN (ACh, DA, 5-HT, OA excitatory; GABA, Glu inhibitory, as in
Shiu et al. 2024) is a plain dict; change it in place or pass ``nt_sign=`` to a function.
Neuron ids are int64: FlyWire root ids do not fit in int32.

The pieces: connectome_tables (the class), connectome_build (from_segmentation),
connectome_voxels (chunk-wise volume reads), connectome_queries, connectome_formats and
connectome_flywire (files), connectome_celegans (the worm sample).
"""

from __future__ import annotations

from .connectome_build import COMPUTED_NEURON_COLUMNS, SYNAPSE_COLUMNS, from_segmentation
from .connectome_celegans import celegans
from .connectome_formats import FORMATS, guess_format, read, write
from .connectome_tables import (
    EDGE_COLUMNS,
    EDGE_KINDS,
    NT_ALIASES,
    NT_SIGN,
    Connectome,
    ConnectomeError,
    ConnectomeWarning,
)

__all__ = [
    "COMPUTED_NEURON_COLUMNS", "EDGE_COLUMNS", "EDGE_KINDS", "FORMATS", "NT_ALIASES", "NT_SIGN",
    "SYNAPSE_COLUMNS", "Connectome", "ConnectomeError", "ConnectomeWarning", "celegans",
    "from_segmentation", "guess_format", "read", "write",
]
