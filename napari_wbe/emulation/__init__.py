"""Spiking emulation of a connectome: the fly-brain LIF model of Shiu et al. 2024.

No Qt, no napari: scripts, notebooks and the dock widget call the same functions.
"""

from .brian2_export import to_brian2
from .controls import frequency_sweep, shuffle_targets, shuffle_weights
from .network import Network, build_network
from .params import EmulationError, EmulationWarning, ModelParams
from .simulate import SimulationResult, simulate

__all__ = ["simulate", "SimulationResult", "ModelParams", "EmulationError", "EmulationWarning",
           "Network", "build_network", "shuffle_weights", "shuffle_targets", "frequency_sweep",
           "to_brian2"]
