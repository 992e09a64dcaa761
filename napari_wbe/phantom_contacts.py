"""Where the mini brain's neurons touch: contact faces, synapse sites on them, and how
strongly each voxel lies on a cell boundary (for membranes in EM and dimming in ExM)."""

from __future__ import annotations

import numpy as np


def contact_faces(labels):
    """Face-adjacent voxel pairs with two different neuron labels.

    Returns (a, b): flat indices of the two voxels of every such face; labels at a are
    always smaller than at b so one unordered pair of neurons sorts together.
    """
    shape = labels.shape
    flat = labels.reshape(-1)
    firsts, seconds = [], []
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis] = slice(None, -1)
        hi[axis] = slice(1, None)
        a, b = labels[tuple(lo)], labels[tuple(hi)]
        face = (a != b) & (a > 0) & (b > 0)
        coords = np.nonzero(face)
        first = np.ravel_multi_index(coords, shape)
        step = int(np.prod(shape[axis + 1 :]))
        firsts.append(first)
        seconds.append(first + step)
    a = np.concatenate(firsts)
    b = np.concatenate(seconds)
    swap = flat[a] > flat[b]
    a[swap], b[swap] = b[swap], a[swap]
    return a, b


def choose_synapse_sites(rng, labels, synapses_per_contact, connection_p):
    """Synapses at contact faces between touching neurons.

    Each touching pair is connected with probability `connection_p`, in one direction
    or (less often) both. The synapse count of a connected direction is lognormal around
    `synapses_per_contact`, scaled by the square root of the contact area, so bigger
    contacts carry more synapses and a few pairs carry many (a heavy tail, as in real
    connectomes). Each synapse occupies one contact face: its pre voxel on the
    presynaptic side and its post voxel, the face neighbour, on the postsynaptic side.

    Returns flat voxel indices (pre_voxel, post_voxel), both int64.
    """
    a, b = contact_faces(labels)
    flat = labels.reshape(-1)
    lo_label = flat[a].astype(np.int64)
    pair = lo_label * (int(flat.max()) + 1) + flat[b]
    order = np.argsort(pair, kind="stable")
    a, b, pair = a[order], b[order], pair[order]
    starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]]) if len(pair) else pair
    area = np.diff(np.r_[starts, len(pair)])

    n_pairs = len(starts)
    connected = rng.random(n_pairs) < connection_p
    # 0: low id -> high id, 1: high -> low, 2: reciprocal
    direction = rng.choice(3, size=n_pairs, p=[0.4, 0.4, 0.2])
    spread = 0.9  # lognormal sigma: a mean-preserving heavy tail
    size_factor = np.sqrt(area / max(float(np.median(area)) if n_pairs else 1.0, 1.0))
    raw = rng.lognormal(-spread**2 / 2, spread, (n_pairs, 2))
    counts = np.maximum(1, np.rint(synapses_per_contact * size_factor[:, None] * raw))
    counts = counts.astype(np.int64)

    pre_sites, post_sites = [], []
    for k in np.flatnonzero(connected):
        forward = counts[k, 0] if direction[k] in (0, 2) else 0
        backward = counts[k, 1] if direction[k] in (1, 2) else 0
        # One face carries at most one synapse; a small contact caps the count.
        total = forward + backward
        if total > area[k]:
            forward = int(round(forward * area[k] / total))
            backward = area[k] - forward
        faces = starts[k] + rng.choice(area[k], size=forward + backward, replace=False)
        fwd, bwd = faces[:forward], faces[forward:]
        pre_sites += [a[fwd], b[bwd]]
        post_sites += [b[fwd], a[bwd]]
    if not pre_sites:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(pre_sites).astype(np.int64), np.concatenate(post_sites).astype(np.int64)


def boundary_strength(labels, spacing):
    """0..1 membrane weight: the cell-side voxels of every label boundary.

    Two touching cells get a dark line two voxels wide (two membranes and the cleft),
    a cell next to extracellular space one voxel (one membrane). A boundary between z
    neighbours lies in the section plane: in an EM slice it is a faint grey smear, not
    a line, so it gets half the weight, less still when z is coarser than x, y.
    """
    strength = np.zeros(labels.shape, np.float32)
    weights = np.minimum(1.0, float(spacing[1:].min()) / spacing)
    weights[0] *= 0.5
    for axis in range(3):
        lo = tuple(slice(None, -1) if a == axis else slice(None) for a in range(3))
        hi = tuple(slice(1, None) if a == axis else slice(None) for a in range(3))
        first, second = labels[lo], labels[hi]
        boundary = first != second
        weight = np.float32(weights[axis])
        np.maximum(strength[lo], (boundary & (first > 0)) * weight, out=strength[lo])
        np.maximum(strength[hi], (boundary & (second > 0)) * weight, out=strength[hi])
    return strength
