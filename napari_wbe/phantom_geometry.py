"""Geometry of the synthetic mini brain (:mod:`napari_wbe.phantom`): neurons as
branching tubes (contacts, boundaries and synapse sites: :mod:`napari_wbe.phantom_contacts`).

Tubes live in physical units (nm, z, y, x) and are rasterised onto the voxel grid only at
the end, so an anisotropic grid (coarse z) shows the same tissue squashed in z.

A neuron is a set of *tubes*: a trunk crossing the volume (a smooth random walk through
an interior anchor point, extended past the faces so it enters and leaves), one to three
thinner side branches (more, also of branches, when the volume needs filling) and maybe
a soma (one big ball on the trunk). A tube is a dense polyline with a relative radius
per point; one absolute radius for the whole volume makes the neurons fill a target
fraction of it, like neuropil.

Rasterisation paints one ball per (sub-sampled) polyline point and gives each voxel to
the tube whose centre is nearest *relative to its radius* (smallest distance / radius).
Where tubes overlap they therefore share a boundary, i.e. neurons touch, which is what
synapses, merge errors and split errors need; a thin tube running into a thick one keeps
its core instead of being swallowed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from skimage.measure import label as label_components

# A voxel's owner is packed with its normalised distance into one uint64 (distance in
# the high 32 bits) so np.minimum.at picks the nearest tube and its label in one pass.
_UNPAINTED = np.iinfo(np.uint64).max
_DISTANCE_SCALE = float(2**31)
# Above this many (point, stencil voxel) pairs per batch the temporaries get big.
_BATCH_ENTRIES = 4_000_000


@dataclass
class Tube:
    points: np.ndarray  # (n, 3) float64, nm, z y x
    rel_radius: np.ndarray  # (n,) radius relative to the volume's mean tube radius
    label: int


@dataclass(frozen=True)
class CellShape:
    """Morphology knobs of one cell type."""

    radius: float  # relative to the volume's mean tube radius
    branches: tuple[int, int]  # inclusive range of side branches
    soma_p: float  # probability of a soma inside the volume


def _random_unit_vectors(rng, n):
    v = rng.standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _smooth_walk(rng, n_points, step):
    """Smooth random displacement (n, 3): a random walk low-passed so tubes bend gently."""
    steps = rng.standard_normal((n_points, 3)) * step
    walk = np.cumsum(steps, axis=0)
    return gaussian_filter1d(walk, sigma=12.0, axis=0, mode="nearest")


def _radius_profile(rng, n_points):
    """Relative radius along a tube: thickens and thins smoothly, like real neurites."""
    sigma = 10.0
    noise = gaussian_filter1d(rng.standard_normal(n_points), sigma, mode="nearest")
    # A smoothed unit normal has std 1/sqrt(2 sqrt(pi) sigma); undo that to get unit std.
    noise *= np.sqrt(2.0 * np.sqrt(np.pi) * sigma)
    return np.clip(np.exp(0.18 * noise), 0.6, 1.6)


def _chord_limits(anchor, direction, extent):
    """Parameters t_in < 0 < t_out where the line anchor + t*direction leaves the box."""
    with np.errstate(divide="ignore"):
        t0 = (0.0 - anchor) / direction
        t1 = (extent - anchor) / direction
    lo = np.where(np.isfinite(t0), np.minimum(t0, t1), -np.inf)
    hi = np.where(np.isfinite(t0), np.maximum(t0, t1), np.inf)
    return float(lo.max()), float(hi.min())


def _polyline(rng, start, direction, t_from, t_to, step, pin_at):
    """Points start + t*direction for t in [t_from, t_to], bent by a smooth random walk
    perpendicular to the direction; the bend is zero at t = pin_at so the curve keeps
    passing through its anchor (or branch point)."""
    t = np.arange(t_from, t_to + step, step)
    disp = _smooth_walk(rng, len(t), step)
    disp -= np.outer(disp @ direction, direction)
    disp -= disp[np.argmin(np.abs(t - pin_at))]
    return start + np.outer(t, direction) + disp


def _inside(points, extent):
    return np.all((points >= 0) & (points < extent), axis=1)


def neuron_tubes(rng, label, shape_params: CellShape, extent, step):
    """Tubes (trunk, side branches, optional soma) of one neuron, and its anchor point."""
    extent = np.asarray(extent, float)
    anchor = extent * rng.uniform(0.05, 0.95, 3)
    direction = _random_unit_vectors(rng, 1)[0]
    t_in, t_out = _chord_limits(anchor, direction, extent)
    # Run past the faces so the tube visibly enters and leaves the volume.
    pad = 0.1 * float(extent.max())
    trunk = _polyline(rng, anchor, direction, t_in - pad, t_out + pad, step, 0.0)
    trunk_radius = _radius_profile(rng, len(trunk)) * shape_params.radius
    tubes = [Tube(trunk, trunk_radius, label)]
    lo, hi = shape_params.branches
    for _ in range(int(rng.integers(lo, hi + 1))):
        tubes.append(branch(rng, tubes[0], extent, step))
    if rng.random() < shape_params.soma_p:
        i = int(np.argmin(np.linalg.norm(trunk - anchor, axis=1)))
        soma_radius = trunk_radius[i] * rng.uniform(2.0, 2.8)
        tubes.append(Tube(anchor[None, :], np.array([soma_radius]), label))
    return tubes, anchor


def branch(rng, parent: Tube, extent, step):
    """A thinner, tapering tube leaving `parent` at a random point inside the volume."""
    inside = np.flatnonzero(_inside(parent.points, extent))
    i = int(rng.choice(inside)) if len(inside) else len(parent.points) // 2
    tangent = parent.points[min(i + 1, len(parent.points) - 1)] - parent.points[max(i - 1, 0)]
    tangent /= np.linalg.norm(tangent) or 1.0
    # Branches spread along the long axes of the box, like laminar arbors; in a thin
    # slab they would otherwise mostly leave through the near faces at once.
    direction = _random_unit_vectors(rng, 1)[0] * np.sqrt(extent / extent.max())
    direction /= np.linalg.norm(direction)
    # Half the along-parent component removed: branches leave at a clear angle.
    direction -= 0.5 * (direction @ tangent) * tangent
    direction /= np.linalg.norm(direction)
    length = rng.uniform(0.3, 0.7) * float(extent.max())
    points = _polyline(rng, parent.points[i], direction, 0.0, length, step, 0.0)
    taper = np.linspace(1.0, 0.7, len(points))
    # Thinner than the parent, but higher-order branches do not dwindle to nothing.
    start = max(parent.rel_radius[i] * rng.uniform(0.6, 0.85), 0.45)
    return Tube(points, start * taper * _radius_profile(rng, len(points)), parent.label)


def _weighted_length(tubes, extent):
    """Sum over tube segments inside the box of length x relative radius squared: the
    tube volume, up to the factor pi * mean_radius**2 (somata left out)."""
    total = 0.0
    for tube in tubes:
        if len(tube.points) > 1:
            seg = np.linalg.norm(np.diff(tube.points, axis=0), axis=1)
            keep = _inside(tube.points[1:], extent)
            total += float(np.sum(seg[keep] * tube.rel_radius[1:][keep] ** 2))
    return total


def _nominal_fill(fill_fraction):
    # Randomly placed tubes overlap like a Poisson process: their union fills
    # 1 - exp(-nominal) of the volume, where nominal is the summed tube volume fraction.
    return -np.log1p(-fill_fraction)


def build_labels(rng, cell_shapes, shape, spacing, fill_fraction):
    """uint32 (z, y, x) labels of len(cell_shapes) neurons, ids 1..n, 0 = outside.

    Tubes should stay a few voxels thick whatever the volume (about 6 in-plane voxels
    at 192 wide, a little more in bigger volumes), so density comes from arbor length:
    random neurons get extra, also higher-order, branches (up to 8 each) until that
    radius would fill `fill_fraction`. The radius is then tuned to hit the fill, within
    [0.6, 2] x the preferred one; a crowd of neurons in a small volume overfills it.
    """
    extent = np.asarray(shape) * spacing
    unit = float(spacing[1:].min())
    volume = float(np.prod(extent))
    preferred = 6.0 * unit * (min(shape[1:]) / 192.0) ** 0.25
    arbors, anchors = [], []
    for neuron_id, cell_shape in enumerate(cell_shapes, start=1):
        own, anchor = neuron_tubes(rng, neuron_id, cell_shape, extent, step=unit)
        arbors.append(own)
        anchors.append(anchor)

    needed = _nominal_fill(fill_fraction) * volume / (np.pi * preferred**2)
    have = _weighted_length([t for arbor in arbors for t in arbor], extent)
    n_extra = 0
    while have < needed and n_extra < 8 * len(arbors):
        arbor = arbors[int(rng.integers(len(arbors)))]
        parents = [t for t in arbor if len(t.points) > 1]
        new = branch(rng, parents[int(rng.integers(len(parents)))], extent, unit)
        arbor.append(new)
        have += _weighted_length([new], extent)
        n_extra += 1

    tubes = [t for arbor in arbors for t in arbor]
    length = max(_weighted_length(tubes, extent), 1e-9)
    radius = np.sqrt(_nominal_fill(fill_fraction) * volume / (np.pi * length))
    radius = float(np.clip(radius, max(0.6 * preferred, 1.5 * unit), 2.0 * preferred))
    labels = rasterise(tubes, radius, shape, spacing, min_radius=1.5 * unit)
    _give_strays_to_neighbours(labels)
    _guarantee_every_neuron(labels, np.array(anchors), spacing)
    return labels


def _give_strays_to_neighbours(labels):
    """Make every neuron one connected piece, as a traced neuron is.

    Where a thick tube crosses a thin one, nearest-tube painting cuts the thin one;
    each neuron keeps its largest piece and every other piece joins the neighbouring
    main piece it shares most faces with (or becomes extracellular space).
    """
    pieces = label_components(labels, background=0, connectivity=1)
    owner = np.zeros(pieces.max() + 1, np.int64)
    owner[pieces.ravel()] = labels.ravel()
    sizes = np.bincount(pieces.ravel())
    order = np.lexsort((-sizes[1:], owner[1:])) + 1  # by neuron, largest piece first
    main = np.zeros_like(owner, dtype=bool)
    main[order[np.r_[True, owner[order][1:] != owner[order][:-1]]]] = True
    pairs = [np.stack([np.take(pieces, range(n - 1), axis=a).ravel(), np.take(pieces, range(1, n), axis=a).ravel()])
             for a, n in enumerate(pieces.shape)]
    a, b = np.concatenate(pairs, axis=1)
    touching = (a != b) & (a > 0) & (b > 0)
    a, b = np.r_[a[touching], b[touching]], np.r_[b[touching], a[touching]]
    stray_to_main = ~main[a] & main[b]
    contacts, counts = np.unique(np.stack([a[stray_to_main], b[stray_to_main]]), axis=1, return_counts=True)
    new_owner = np.where(main, owner, 0)
    best = np.lexsort((-counts, contacts[0]))  # per stray, the largest contact first
    first = best[np.r_[True, contacts[0][best][1:] != contacts[0][best][:-1]]]
    new_owner[contacts[0][first]] = owner[contacts[1][first]]
    labels[...] = new_owner[pieces]


def _guarantee_every_neuron(labels, anchors, spacing):
    """Give any neuron that was painted over entirely one voxel at its anchor.

    Practically never needed (every trunk passes through an interior anchor), but the
    contract is that every id is present. The anchor voxel is only taken from a neuron
    that keeps other voxels; failing that, from the largest neuron.
    """
    flat = labels.reshape(-1)
    counts = np.bincount(flat, minlength=len(anchors) + 1)
    for neuron_id in np.flatnonzero(counts[1:] == 0) + 1:
        voxel = (anchors[neuron_id - 1] / spacing).astype(int)
        voxel = np.minimum(voxel, np.array(labels.shape) - 1)
        index = int(np.ravel_multi_index(tuple(voxel), labels.shape))
        if flat[index] != 0 and counts[flat[index]] < 2:
            index = int(np.flatnonzero(flat == np.argmax(counts[1:]) + 1)[0])
        counts[flat[index]] -= 1
        flat[index] = neuron_id
        counts[neuron_id] += 1


def _paint_samples(tubes, mean_radius, extent, min_radius):
    """Ball centres, radii (nm) and labels, about half a local radius apart along each
    tube: the scallops between balls stay under 4 % of the radius, with few balls."""
    centres, radii, labels = [], [], []
    for tube in tubes:
        # Thinner than ~1.5 voxels a tube breaks up into disconnected voxels.
        radius = np.maximum(tube.rel_radius * mean_radius, min_radius)
        if len(radius) > 1:
            seg = np.linalg.norm(np.diff(tube.points, axis=0), axis=1)
            progress = np.r_[0.0, np.cumsum(seg / (0.5 * radius[1:]))]
            keep = np.r_[True, np.floor(progress[1:]) != np.floor(progress[:-1])]
        else:
            keep = np.ones(1, bool)
        pts, rad = tube.points[keep], radius[keep]
        # Balls wholly outside the box paint nothing.
        near = np.all((pts > -rad[:, None]) & (pts < extent + rad[:, None]), axis=1)
        centres.append(pts[near])
        radii.append(rad[near])
        labels.append(np.full(int(near.sum()), tube.label, np.uint64))
    return np.concatenate(centres), np.concatenate(radii), np.concatenate(labels)


def ball_offsets(radius, spacing, reach=0.0):
    """Integer voxel offsets within `radius` + `reach` nm of a voxel centre."""
    half = np.floor((radius + reach) / spacing).astype(int)
    axes = [np.arange(-h, h + 1) for h in half]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    return grid[np.linalg.norm(grid * spacing, axis=1) <= radius + reach]


def rasterise(tubes, mean_radius, shape, spacing, min_radius=0.0):
    """uint32 label volume: each voxel goes to the tube minimising distance / radius."""
    shape = tuple(int(s) for s in shape)
    spacing = np.asarray(spacing, float)
    extent = np.asarray(shape) * spacing
    centres, radii, labels = _paint_samples(tubes, mean_radius, extent, min_radius)
    owner = np.full(int(np.prod(shape)), _UNPAINTED, np.uint64)

    # Balls of similar size share one stencil, so group them by radius. A ball centre
    # lies anywhere in its voxel, up to half a voxel diagonal from the voxel centre.
    reach = 0.5 * float(np.linalg.norm(spacing))
    radius_bin = np.ceil(radii / (0.5 * spacing.min()))
    for value in np.unique(radius_bin):
        members = np.flatnonzero(radius_bin == value)
        offsets = ball_offsets(radii[members].max(), spacing, reach)
        per_batch = max(1, _BATCH_ENTRIES // len(offsets))
        for start in range(0, len(members), per_batch):
            chosen = members[start : start + per_batch]
            _paint_batch(owner, centres[chosen], radii[chosen], labels[chosen], offsets,
                         spacing, shape)

    painted = owner != _UNPAINTED
    out = np.zeros(owner.shape, np.uint32)
    out[painted] = (owner[painted] & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    return out.reshape(shape)


def _paint_batch(owner, centres, radii, labels, offsets, spacing, shape):
    # Voxel i has its centre at (i + 0.5) * spacing. Squared distances come from one
    # matrix product, |f + o|^2 = |f|^2 + 2 f.o + |o|^2, instead of (balls, offsets, 3)
    # temporaries: this loop is most of the phantom's run time.
    base = np.floor(centres / spacing).astype(np.int64)
    frac = ((base + 0.5) * spacing - centres).astype(np.float32)
    offsets_nm = (offsets * spacing).astype(np.float32)
    ratio2 = frac @ (2.0 * offsets_nm.T)
    ratio2 += np.einsum("ij,ij->i", frac, frac)[:, None]
    ratio2 += np.einsum("ij,ij->i", offsets_nm, offsets_nm)[None, :]
    ratio2 /= (radii.astype(np.float32) ** 2)[:, None]
    inside = ratio2 <= 1.0
    # Only balls near a face can reach outside the volume; clip just those.
    reach = np.abs(offsets).max(axis=0)
    near = np.flatnonzero(np.any((base < reach) | (base + reach >= shape), axis=1))
    for axis, size in enumerate(shape):
        coord = base[near, axis][:, None] + offsets[:, axis][None, :]
        inside[near] &= (coord >= 0) & (coord < size)
    strides = np.array([shape[1] * shape[2], shape[2], 1])
    flat = (base @ strides)[:, None] + (offsets @ strides)[None, :]
    # The squared ratio orders voxels the same way as the ratio; no square root needed.
    distance_code = (ratio2[inside] * _DISTANCE_SCALE).astype(np.uint64)
    key = (distance_code << np.uint64(32)) | np.broadcast_to(labels[:, None], inside.shape)[inside]
    np.minimum.at(owner, flat[inside], key)
