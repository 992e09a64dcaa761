"""Simulated activity as frames to play on the neurons it ran on: no Qt, no napari.

The fast way to colour 10,000 segmented neurons every frame is to never touch the voxels
again: the label volume is turned once into a volume of neuron *indices* (1..N, 0 for
background, uint16), and each frame is then only a table of N + 1 colours. napari colours
uint16 labels on the GPU through a 65,536-entry lookup table, so a frame costs a small
texture upload, whatever the size of the volume.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pandas as pd

from ..chunked_labels import block_bounds
from ..id_hash import find_slot, id_table
from .params import EmulationError

FLASH_MS = 10.0           # how long a spike's flash takes to fade to 1/e, in model time
MAX_SHOWN_NEURONS = 65_535  # napari's direct uint16 colour lookup (and CyclicLabelColormap's limit)
SPIKES, VOLTAGE = "spike flash", "membrane potential"
ACTIVITY = "activity"  # the napari-wbe `kind` of a layer that only displays a run (not saved)
QUIET_COLOUR = (0.5, 0.55, 0.75, 0.5)
ROLE_COLOURS = {"stimulated": (0.25, 0.85, 0.35, 0.75), "silenced": (0.35, 0.45, 1.0, 0.75)}


@numba.njit(cache=True, nogil=True)
def _index_block(block, table, low, out, counts, sums):
    """Neuron index + 1 of every voxel (runs of one id are looked up once), plus per-index
    voxel counts and coordinate sums for centroids."""
    nz, ny, nx = block.shape
    last_id, last_index = np.int64(0), 0
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                value = np.int64(block[z, y, x])
                if value != last_id:
                    last_id = value
                    slot = find_slot(table, value)
                    last_index = table[slot, 1] + 1 if value != 0 and table[slot, 0] == value else 0
                out[z, y, x] = last_index
                if last_index:
                    counts[last_index] += 1
                    sums[last_index, 0] += z + low[0]
                    sums[last_index, 1] += y + low[1]
                    sums[last_index, 2] += x + low[2]


def neuron_index_volume(labels, neuron_ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index volume, voxels per neuron, centroids) for a 3D label volume (numpy or dask).

    The index volume holds 1 + the position of each voxel's label in `neuron_ids` (0 where
    the label is background or not a neuron), as uint16. Counts and centroids (voxel
    coordinates, NaN for neurons without voxels) follow `neuron_ids`.
    """
    neuron_ids = np.asarray(neuron_ids, dtype=np.int64)
    if labels.ndim != 3:
        raise EmulationError(f"Activity is played on a 3D label volume (z, y, x); this one has {labels.ndim} axes.")
    if len(neuron_ids) > MAX_SHOWN_NEURONS:
        raise EmulationError(
            f"{len(neuron_ids):,} neurons are more than the {MAX_SHOWN_NEURONS:,} a label volume can animate; "
            "animate them as points (a Points layer carrying the connectome) instead.")
    table = id_table(neuron_ids)
    out = np.zeros(labels.shape, np.uint16)
    counts = np.zeros(len(neuron_ids) + 1, np.int64)
    sums = np.zeros((len(neuron_ids) + 1, 3), np.float64)
    for low, high in block_bounds(labels):
        box = tuple(slice(a, b) for a, b in zip(low, high))
        block = np.asarray(labels[box])
        if block.dtype.kind not in "iu":
            raise EmulationError(f"Labels must be integers, not {block.dtype}.")
        _index_block(block.view(np.int64) if block.dtype == np.uint64 else block, table,
                     np.asarray(low, np.int64), out[box], counts, sums)
    with np.errstate(invalid="ignore", divide="ignore"):
        centroids = sums[1:] / counts[1:, None]
    return out, counts[1:], centroids


def pyramid(volume: np.ndarray, levels: int = 3) -> list[np.ndarray]:
    """Strided views, each half the size of the last: napari renders the coarsest in 3D
    (4x fewer voxels per axis, about twice the frame rate), the finest in 2D. No copies."""
    out = [volume]
    while len(out) < levels and min(out[-1].shape) >= 32:
        out.append(out[-1][::2, ::2, ::2])
    return out


class ActivityFrames:
    """One trial of a `SimulationResult` as frames `frame_ms` of model time apart.

    `values(frame)` is each neuron's activity in 0..1 (order of `result.neuron_ids`):
    a flash at every spike that fades with `flash_ms`, or the membrane potential between
    reset and threshold (needs the traces: `simulate(..., record_v=ids)`).
    """

    def __init__(self, result, trial: int = 0, frame_ms: float = 1.0, flash_ms: float = FLASH_MS,
                 mode: str = SPIKES):
        if not 0 <= trial < result.trials:
            raise EmulationError(f"Trial {trial} does not exist; the run has trials 0..{result.trials - 1}.")
        if not frame_ms > 0:
            raise EmulationError(f"frame_ms = {frame_ms}; each frame must advance a positive time.")
        if mode == VOLTAGE and (result.v is None or result.v.empty):
            raise EmulationError("Membrane potential needs traces: run with record_v (the widget records them "
                                 "for small circuits).")
        self.result, self.trial, self.frame_ms, self.flash_ms, self.mode = result, trial, frame_ms, flash_ms, mode
        self.n = len(result.neuron_ids)
        self.n_frames = max(1, int(math.ceil(result.duration_ms / frame_ms - 1e-9)) + 1)
        spikes = result.spikes[result.spikes["trial"] == trial].sort_values("t_ms", kind="stable")
        self._t = spikes["t_ms"].to_numpy(np.float64)
        self._index = pd.Index(result.neuron_ids).get_indexer(spikes["neuron"].to_numpy())
        if mode == VOLTAGE:
            self._prepare_voltage()

    def time_ms(self, frame: int) -> float:
        return min(frame * self.frame_ms, self.result.duration_ms)

    def values(self, frame: int) -> np.ndarray:
        return self._voltage(frame) if self.mode == VOLTAGE else self._flash(frame)

    def _flash(self, frame: int) -> np.ndarray:
        """Full brightness for spikes since the previous frame (none is skipped however
        fast the playback), then exponential fading."""
        t = self.time_ms(frame)
        start = np.searchsorted(self._t, t - self.frame_ms - 6 * self.flash_ms, side="right")
        stop = np.searchsorted(self._t, t, side="right")
        age = t - self._t[start:stop]
        brightness = np.exp(-np.maximum(age - self.frame_ms, 0.0) / self.flash_ms).astype(np.float32)
        out = np.zeros(self.n, np.float32)
        np.maximum.at(out, self._index[start:stop], brightness)
        return out

    def _prepare_voltage(self) -> None:
        params, v = self.result.params, self.result.v.loc[self.trial]
        self._v_times = v.index.to_numpy(np.float64)
        columns = pd.Index(self.result.neuron_ids).get_indexer(v.columns)
        span = max(params.v_th - params.v_rst, 1e-9)
        self._v = np.zeros((len(v), self.n), np.float32)
        self._v[:, columns] = np.clip((v.to_numpy() - params.v_rst) / span, 0, 1)

    def _voltage(self, frame: int) -> np.ndarray:
        row = min(np.searchsorted(self._v_times, self.time_ms(frame), side="right") - 1, len(self._v_times) - 1)
        return self._v[max(row, 0)]


def heat(values: np.ndarray) -> np.ndarray:
    """0..1 to a fire ramp: dark red, orange, yellow, white (RGB)."""
    v = np.clip(values, 0, 1)[:, None]
    return np.clip(np.hstack([3 * v, 3 * v - 1, 3 * v - 2]), 0, 1) * 0.85 + 0.15 * v


def activity_colours(values: np.ndarray, roles: np.ndarray | None = None) -> np.ndarray:
    """(N + 1, 4) float32 RGBA for a label/point colour table: row 0 transparent (background),
    row i + 1 for neuron i. Quiet neurons keep a faint base colour (green when stimulated, blue
    when silenced), active ones glow towards white and turn opaque."""
    n = len(values)
    base = np.tile(np.asarray(QUIET_COLOUR, np.float32), (n, 1))
    if roles is not None:
        for role, colour in ROLE_COLOURS.items():
            base[np.asarray(roles) == role] = colour
    v = np.clip(values, 0, 1).astype(np.float32)[:, None]
    colours = np.zeros((n + 1, 4), np.float32)
    colours[1:, :3] = base[:, :3] * (1 - v) + heat(v[:, 0]) * v
    colours[1:, 3] = base[:, 3] + (1 - base[:, 3]) * v[:, 0]
    return colours


def raster_rows(result, trial: int = 0, first=(), max_rows: int = 200) -> tuple[pd.DataFrame, np.ndarray]:
    """Spikes of one trial for a raster plot: (spikes with a `row` column, neuron id of each
    row). Rows: the `first` ids (e.g. the stimulated), then the rest by spike count; neurons
    beyond `max_rows` are left out."""
    spikes = result.spikes[result.spikes["trial"] == trial]
    counts = spikes["neuron"].value_counts()
    first = [i for i in first if i in set(result.neuron_ids)]
    order = first + [i for i in counts.index.tolist() if i not in set(first)]
    order = np.asarray(order[:max_rows], dtype=np.int64)
    row = pd.Index(order).get_indexer(spikes["neuron"].to_numpy())
    shown = spikes.assign(row=row)[row >= 0]
    return shown.reset_index(drop=True), order
