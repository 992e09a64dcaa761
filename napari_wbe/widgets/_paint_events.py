"""What napari's brush, eraser and fill changed, from a Labels layer's `paint` event.

napari reports each stroke as a list of history atoms: (indices, old values, new values)
tuples, or (since 0.6) masked atoms holding a box, a mask and the old values. Both come
out here as voxel indices with their values before and after: napari may emit the event
before it writes the array, so the new values come from the atoms, not from the array.
"""

from __future__ import annotations

import numpy as np


def painted_voxels(atoms) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray] | None:
    """(indices, old values, new values) of every voxel an event's atoms changed, in order."""
    indices, olds, news = [], [], []
    for atom in atoms:
        if hasattr(atom, "slice_key"):
            starts = np.array([s.start or 0 for s in atom.slice_key])
            stops = np.array([s.stop for s in atom.slice_key])
            mask = np.ones(stops - starts, bool) if atom.mask is None else np.asarray(atom.mask)
            where = np.nonzero(mask)
            old = np.asarray(atom.old_values)
            indices.append(np.stack([w + s for w, s in zip(where, starts)]))
            olds.append(old[mask] if atom.mask is None else old.reshape(-1))
            news.append(np.full(len(olds[-1]), atom.new_value))
        else:
            where, old, new = atom
            indices.append(np.stack([np.asarray(w).reshape(-1) for w in where]))
            olds.append(np.broadcast_to(np.asarray(old), indices[-1].shape[1:]).reshape(-1))
            news.append(np.broadcast_to(np.asarray(new), indices[-1].shape[1:]).reshape(-1))
    if not indices:
        return None
    stacked = np.concatenate(indices, axis=1)
    return tuple(stacked), np.concatenate(olds), np.concatenate(news)
