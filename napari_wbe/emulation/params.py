"""Model parameters of the fly-brain LIF model (Shiu et al. 2024), with per-neuron overrides.

Units are mV and ms throughout (rates in Hz). Any neuron parameter may instead be a column
of the connectome's neuron table; the column wins over the template value, so that
heterogeneous neurons (e.g. fitted from gene expression) need no code change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

# Parameters that may differ between neurons (looked up as columns of `cx.neurons`).
NEURON_PARAMS = ("v_0", "v_rst", "v_th", "t_mbr", "tau", "t_rfc")


class EmulationError(ValueError):
    """Bad input for the emulation; the message names the problem and the fix."""


class EmulationWarning(UserWarning):
    """Something was left out or changed on the way to the simulation; the message says what."""


@dataclass(frozen=True)
class ModelParams:
    """The reference model's template neuron and synapse (defaults of Shiu et al. 2024)."""

    v_0: float = -52.0     # resting potential, mV
    v_rst: float = -52.0   # reset potential, mV
    v_th: float = -45.0    # spike threshold, mV
    t_mbr: float = 20.0    # membrane time constant, ms
    tau: float = 5.0       # synaptic time constant, ms
    t_rfc: float = 2.2     # refractory period, ms
    t_dly: float = 1.8     # synaptic delay, ms
    w_syn: float = 0.275   # weight of one synapse, mV
    dt: float = 0.1        # time step, ms
    f_poi: float = 250.0   # a Poisson/explicit input kick adds w_syn * f_poi to v
    rate_hz: float = 150.0  # default stimulus rate

    def replace(self, **changes) -> ModelParams:
        return ModelParams(**{**asdict(self), **changes})

    @property
    def kick(self) -> float:
        return self.w_syn * self.f_poi

    @property
    def delay_steps(self) -> int:
        return int(round(self.t_dly / self.dt))

    def validate(self) -> None:
        for name, value in asdict(self).items():
            if not np.isfinite(value):
                raise EmulationError(f"ModelParams.{name} is {value}; every parameter must be a finite number.")
        for name in ("t_mbr", "tau", "dt"):
            if getattr(self, name) <= 0:
                raise EmulationError(f"ModelParams.{name} = {getattr(self, name)} ms; it must be > 0.")
        if self.t_dly < self.dt:
            raise EmulationError(
                f"The time step dt = {self.dt} ms is larger than the synaptic delay t_dly = {self.t_dly} ms; "
                "a spike could not arrive after the step it was sent in. Use dt <= t_dly.")
        if self.t_rfc < 0 or self.f_poi < 0 or self.rate_hz < 0:
            raise EmulationError("t_rfc, f_poi and rate_hz must be >= 0.")

    def per_neuron(self, neurons: pd.DataFrame) -> dict[str, np.ndarray]:
        """float64 array of every neuron parameter, one value per row of `neurons`.

        A column named like the parameter is used when present (NaN is an error, not a
        silent fallback to the template, because a half-filled column is usually a bug).
        """
        self.validate()
        n = len(neurons)
        values = {}
        for name in NEURON_PARAMS:
            if name in neurons.columns:
                column = pd.to_numeric(neurons[name], errors="coerce").to_numpy(dtype=np.float64)
                bad = ~np.isfinite(column)
                if bad.any():
                    first = neurons.index[np.flatnonzero(bad)[0]]
                    raise EmulationError(
                        f"Neuron column {name!r} has {int(bad.sum())} missing or non-numeric values "
                        f"(e.g. neuron {first}); fill them (e.g. with ModelParams().{name} = "
                        f"{getattr(self, name)}) or drop the column to use the template value.")
                values[name] = column
            else:
                values[name] = np.full(n, getattr(self, name), dtype=np.float64)
        for name in ("t_mbr", "tau"):
            if n and values[name].min() <= 0:
                raise EmulationError(f"Neuron parameter {name!r} must be > 0 ms for every neuron.")
        t_rfc = values["t_rfc"]
        if n and t_rfc.min() < 0:
            raise EmulationError("Neuron parameter 't_rfc' must be >= 0 ms for every neuron.")
        short = (t_rfc > 0) & (t_rfc < self.dt)
        if short.any():
            raise EmulationError(
                f"The time step dt = {self.dt} ms is larger than the refractory period of {int(short.sum())} "
                f"neurons (e.g. {neurons.index[np.flatnonzero(short)[0]]}: t_rfc = {t_rfc[short][0]} ms); "
                "refractoriness is counted in whole steps. Use a smaller dt or t_rfc = 0.")
        return values
