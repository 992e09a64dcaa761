"""Where segments touch, and how strong the boundary between them looks.

One pass over the voxel faces of a label volume gives, per pair of touching segments, the
contact size (faces), the summed boundary strength over those faces, the contact's shape
(moments of its faces' centres) and a face near the middle of the contact; per segment,
its size and surface (faces to anything else, background included). Merge suggestions
and the proofreading queue are built on it.

Boundary strength of a face, in [0, 1] (1 = membrane), is the mean over its two voxels of:
- a given boundary probability map (as ilastik / gala / NeuroProof use), or
- from EM, where membranes are thin dark sheets: the largest eigenvalue of the Hessian of
  the lightly smoothed image (a dark sheet curves upwards across itself, whatever its
  orientation), scale-normalised (x sigma^2), in units of the image's 1st-99th percentile
  range, divided by MEMBRANE_CURVATURE and clipped. The raw intensity at a face does not
  work: watershed lines inside a cell run along dark organelles (mitochondria), so inner
  faces are as dark as membranes; what differs is the sheet shape. On the FlyEM medulla
  cube this scores touching fragment pairs with ROC AUC 0.89 (raw mean intensity: 0.41).
The Hessian is evaluated only at the voxels next to a face (finite differences), so the
pass costs one gaussian filter plus work proportional to the number of faces.

Flatness of a contact, log10(lambda2 / lambda3) of the covariance of its faces' centres:
two cells meet along a membrane, a smooth sheet, so their contact lies close to a plane;
the cut between two pieces of one cell follows no membrane, only where two watershed
basins happened to meet inside it, and is more ragged or curved. Mean flatness of one-cell
and two-cell fragment pairs: 0.70 and 1.16 on fibsem_small (gala crop), 0.67 and 1.05 on
the FlyEM medulla cube (contacts of 30 faces or more).

Dask volumes are processed block by block; every face is counted once, in the block of
its lower voxel, and blocks read enough halo that the result equals a whole-volume run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter

from .chunked_labels import block_bounds
from .proofreading_metrics import compact_ids

# sigma^2 x Hessian eigenvalue (intensity-range units) at which a face counts as full
# membrane. Medulla FIB-SEM (sigma 1.5): median 0.038 on faces between fragments of one
# neuron, 0.074 between neurons; 0.12 puts them at 0.32 and 0.62.
MEMBRANE_CURVATURE = 0.12
# Moments summed per pair over its faces' centres (c: centre; z, y, x, then the products),
# so the moments of a contact made of several pairs (after merges) are their sums.
MOMENTS = ("cz", "cy", "cx", "czz", "cyy", "cxx", "czy", "czx", "cyx")
# voxels^2 added to the covariance's eigenvalues, which can be zero, so flatness stays finite:
# a contact lying exactly in a plane scores very flat (3 and more); one of one or two faces,
# or along a line, scores 0, like a ragged cut (on fibsem_small such contacts are 57% one
# cell, and giving them a typical flatness instead fitted worse).
FLATNESS_FLOOR = 1e-3


@dataclass
class Contacts:
    """pairs: one row per touching pair (a < b, both non-zero): a, b, contact (faces),
    boundary_sum, boundary_mean (NaN without a boundary source), flatness (see the module
    docstring); z, y, x and bz, by, bx: the two voxels (in a, in b) of a face near the
    middle of the contact.
    segments: index label (non-zero ids): size (voxels), surface (faces to other ids or 0).
    boundary_source: "boundary map", "EM" or "none".
    face_moments: (len(pairs), 9) float64, per pair the sums over its faces' centres named
    in MOMENTS (for `contact_flatness` of merged contacts)."""

    pairs: pd.DataFrame
    segments: pd.DataFrame
    boundary_source: str
    face_moments: np.ndarray


def contact_flatness(contact, face_moments) -> np.ndarray:
    """log10(lambda2 / lambda3) of the covariance of each contact's face centres, from its
    number of faces and the MOMENTS sums; higher: closer to a plane, more membrane-like."""
    n = np.maximum(np.asarray(contact, np.float64), 1.0)
    sums = np.asarray(face_moments, np.float64).reshape(len(n), len(MOMENTS)) / n[:, None]
    mean = sums[:, :3]
    covariance = np.empty((len(n), 3, 3))
    for k, (i, j) in enumerate(((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)), start=3):
        covariance[:, i, j] = covariance[:, j, i] = sums[:, k] - mean[:, i] * mean[:, j]
    eigenvalues = np.maximum(np.linalg.eigvalsh(covariance), 0.0) + FLATNESS_FLOOR  # ascending
    return np.log10(eigenvalues[:, 1] / eigenvalues[:, 0])


def contact_table(labels, image=None, boundary=None, sigma: float = 1.5, dark_membranes: bool = True,
                  progress=None) -> Contacts:
    """Touching pairs and segment sizes of `labels` (numpy or dask, z, y, x).

    boundary: probability map (1 = membrane), floats in [0, 1] or integers scaled by their
        dtype's maximum; takes precedence over `image`.
    image: EM; membrane strength from its Hessian (see the module docstring), computed on
        the image smoothed with `sigma` voxels. dark_membranes=False for images where
        membranes are bright.
    progress: callable(done, total) per block.
    """
    shape = tuple(labels.shape)
    for name, other in (("image", image), ("boundary", boundary)):
        if other is not None and tuple(other.shape) != shape:
            raise ValueError(f"{name} has shape {tuple(other.shape)} but labels are {shape}; they must share one grid.")
    source = "boundary map" if boundary is not None else ("EM" if image is not None else "none")
    values = boundary if boundary is not None else image
    scale = _boundary_scale(boundary) if boundary is not None else None
    levels = intensity_levels(image) if source == "EM" else None
    halo = _gaussian_radius(sigma) + 2 if source == "EM" else 0
    windows = list(face_windows(labels, halo))
    settings = {"source": source, "scale": scale, "levels": levels, "sigma": float(sigma),
                "sign": 1.0 if dark_membranes else -1.0}
    if isinstance(labels, da.Array) or isinstance(values, da.Array):
        results = compute_in_batches([
            dask.delayed(_block)(labels[lab], None if values is None else values[img], crop, origin, settings)
            for lab, img, crop, origin in windows], progress)
    else:
        labels = np.asarray(labels)
        values = None if values is None else np.asarray(values)
        _, _, crop, origin = windows[0]  # one block: the whole volume
        results = [_block(labels, values, crop, origin, settings)]
        if progress:
            progress(1, 1)
    return _combine(results, source)


def face_windows(labels, halo: int):
    """(label slices, image slices, crop of the image window to the label window, origin)
    per block: labels read one voxel past the block's high side (faces to the next block),
    the image `halo` voxels further on both sides."""
    shape = labels.shape
    for lo, hi in block_bounds(labels):
        lab = tuple(slice(a, min(b + 1, n)) for a, b, n in zip(lo, hi, shape))
        img = tuple(slice(max(a - halo, 0), min(b + 1 + halo, n)) for a, b, n in zip(lo, hi, shape))
        crop = tuple(a - s.start for a, s in zip(lo, img))
        yield lab, img, crop, (tuple(lo), tuple(hi))


def compute_in_batches(tasks: list, progress=None, batch: int = 8) -> list:
    """Results of dask.delayed tasks, a few at a time (in parallel within a batch): memory
    stays bounded by a batch's blocks, and `progress(done, total)` hears after each batch."""
    results = []
    for start in range(0, len(tasks), batch):
        results += dask.compute(*tasks[start:start + batch])
        if progress:
            progress(len(results), len(tasks))
    return results


def _block(labels: np.ndarray, values, crop, origin, settings) -> dict:
    labels = np.asarray(labels)
    (lo, hi) = origin
    own = tuple(h - l for l, h in zip(lo, hi))
    field = _face_field(values, labels, crop, settings)
    found = list(block_faces(labels, own))
    own_labels = labels[tuple(slice(0, n) for n in own)]
    ids, index = compact_ids(own_labels.ravel())
    sizes = pd.Series(np.bincount(index, minlength=len(ids)), index=ids)
    return {"faces": _pair_rows(found, field, lo), "surface": _surface(found), "size": sizes}


def block_faces(labels: np.ndarray, own):
    """Per axis: (id below, id above, coordinates of the voxel below, axis) of the faces
    between different ids whose lower voxel lies in the first `own` voxels of `labels`."""
    for axis in range(3):
        n_faces = min(own[axis], labels.shape[axis] - 1)  # the last slice of the volume has no upper face
        lower = tuple(slice(0, n_faces) if d == axis else slice(0, own[d]) for d in range(3))
        upper = tuple(slice(1, n_faces + 1) if d == axis else slice(0, own[d]) for d in range(3))
        a, b = labels[lower], labels[upper]
        where = np.nonzero(a != b)
        yield a[where], b[where], where, axis


def _face_field(values, labels: np.ndarray, crop, settings):
    """A function (coords of lower voxels, axis) -> boundary strength of those faces."""
    if settings["source"] == "none":
        return None
    values = np.asarray(values)
    window = tuple(slice(c, c + n) for c, n in zip(crop, labels.shape))
    if settings["source"] == "boundary map":
        strength = values[window].astype(np.float32) / np.float32(settings["scale"])
    else:
        strength = _membrane_strength(values, labels, crop, settings)

    def at(where, axis):
        upper = tuple(w + 1 if d == axis else w for d, w in enumerate(where))
        return 0.5 * (strength[where] + strength[upper])

    return at


def _membrane_strength(values: np.ndarray, labels: np.ndarray, crop, settings) -> np.ndarray:
    """Membrane strength in [0, 1] on the voxels of `labels` that touch another id (the
    only ones a face reads; 0 elsewhere), from the Hessian of the smoothed image."""
    low, high = settings["levels"]
    smooth = gaussian_filter(values.astype(np.float32), settings["sigma"], mode="nearest")
    smooth = np.pad((smooth - low) * np.float32(settings["sign"] / (high - low)), 1, mode="edge")
    touching = np.zeros(labels.shape, bool)
    for axis in range(3):
        lower = tuple(slice(0, -1) if d == axis else slice(None) for d in range(3))
        upper = tuple(slice(1, None) if d == axis else slice(None) for d in range(3))
        differs = labels[lower] != labels[upper]
        touching[lower] |= differs
        touching[upper] |= differs
    where = np.nonzero(touching)
    strides = np.array(smooth.strides) // smooth.itemsize
    position = sum((w + (c + 1)) * int(s) for w, c, s in zip(where, crop, strides))
    curvature = _sheet_curvature(smooth.ravel(), position, strides)
    strength = np.zeros(labels.shape, np.float32)
    strength[where] = np.clip(curvature * np.float32(settings["sigma"] ** 2 / MEMBRANE_CURVATURE), 0.0, 1.0)
    return strength


def _sheet_curvature(flat: np.ndarray, at: np.ndarray, strides) -> np.ndarray:
    """Largest Hessian eigenvalue at flat positions (central differences)."""
    sz, sy, sx = (int(s) for s in strides)
    centre = 2 * flat[at]

    def second(step):
        return flat[at + step] + flat[at - step] - centre

    def mixed(s1, s2):
        return 0.25 * (flat[at + s1 + s2] - flat[at + s1 - s2] - flat[at - s1 + s2] + flat[at - s1 - s2])

    return largest_eigenvalue(second(sz), second(sy), second(sx), mixed(sz, sy), mixed(sz, sx), mixed(sy, sx))


def largest_eigenvalue(hzz, hyy, hxx, hzy, hzx, hyx):
    """Largest eigenvalue of symmetric 3 x 3 matrices, elementwise."""
    return symmetric_eigenvalues(hzz, hyy, hxx, hzy, hzx, hyx, only_largest=True)[0]


def symmetric_eigenvalues(hzz, hyy, hxx, hzy, hzx, hyx, only_largest: bool = False) -> list:
    """Eigenvalues of symmetric 3 x 3 matrices, elementwise, largest first (closed form: the
    trigonometric solution of the characteristic cubic), without building the matrices."""
    mean = (hzz + hyy + hxx) / 3
    azz, ayy, axx = hzz - mean, hyy - mean, hxx - mean
    spread = np.sqrt((azz * azz + ayy * ayy + axx * axx + 2 * (hzy * hzy + hzx * hzx + hyx * hyx)) / 6)
    safe = np.where(spread > 1e-12, spread, 1.0)
    bzz, byy, bxx, bzy, bzx, byx = (m / safe for m in (azz, ayy, axx, hzy, hzx, hyx))
    det = bzz * (byy * bxx - byx * byx) - bzy * (bzy * bxx - byx * bzx) + bzx * (bzy * byx - byy * bzx)
    angle = np.arccos(np.clip(det / 2, -1.0, 1.0)) / 3
    spread = np.where(spread > 1e-12, spread, 0.0)
    # Roots at angle, angle + 4 pi / 3, angle + 2 pi / 3: descending for angle in [0, pi / 3].
    shifts = (0.0,) if only_largest else (0.0, 4 * np.pi / 3, 2 * np.pi / 3)
    return [mean + 2 * spread * np.cos(angle + shift) for shift in shifts]


def _pair_rows(found, field, origin) -> pd.DataFrame:
    """Per touching pair in this block: contact, boundary and coordinate sums, the MOMENTS
    sums of its face centres, and the face nearest the block's part of the contact centre
    (its voxel in a and in b)."""
    columns = {name: [] for name in ("a", "b", "strength", "z", "y", "x", "bz", "by", "bx")}
    for a, b, where, axis in found:
        keep = (a != 0) & (b != 0)
        a, b, where = a[keep], b[keep], tuple(w[keep] for w in where)
        columns["strength"].append(field(where, axis) if field is not None else np.zeros(len(a), np.float32))
        upper_is_a = (a > b).astype(np.int64)  # the lower voxel holds the face's first id
        for d, (w, o) in enumerate(zip(where, origin)):
            step = d == axis
            columns["zyx"[d]].append(w + o + (upper_is_a if step else 0))
            columns["b" + "zyx"[d]].append(w + o + ((1 - upper_is_a) if step else 0))
        columns["a"].append(np.minimum(a, b))
        columns["b"].append(np.maximum(a, b))
    a, b, strength, z, y, x, bz, by, bx = (np.concatenate(columns[c]) for c in columns)
    if len(a) == 0:
        return pd.DataFrame(columns=["a", "b", "contact", "boundary_sum", "sz", "sy", "sx", *MOMENTS,
                                     "z", "y", "x", "bz", "by", "bx"])
    cz, cy, cx = ((v + w) * 0.5 for v, w in ((z, bz), (y, by), (x, bx)))  # face centres: between the voxels
    ids, index = compact_ids(np.concatenate([a, b]).astype(np.int64))
    key = index[: len(a)].astype(np.int64) * len(ids) + index[len(a):]
    pairs, inverse = np.unique(key, return_inverse=True)
    count = np.bincount(inverse)
    sums = [np.bincount(inverse, weights=v) for v in (strength, z, y, x)]
    moments = {name: np.bincount(inverse, weights=v) for name, v in
               zip(MOMENTS, (cz, cy, cx, cz * cz, cy * cy, cx * cx, cz * cy, cz * cx, cy * cx))}
    distance = sum((c - s[inverse] / count[inverse]) ** 2 for c, s in zip((z, y, x), sums[1:]))
    # Nearest face per pair: sort by pair, then by distance within it (a fraction < 1).
    nearest = np.argsort(inverse + distance / (distance.max() + 1.0))
    first = nearest[np.r_[0, np.flatnonzero(np.diff(inverse[nearest])) + 1]]
    return pd.DataFrame({"a": ids[pairs // len(ids)], "b": ids[pairs % len(ids)], "contact": count,
                         "boundary_sum": sums[0], "sz": sums[1], "sy": sums[2], "sx": sums[3], **moments,
                         **{c: v[first].astype(np.int64) for c, v in zip(("z", "y", "x", "bz", "by", "bx"),
                                                                            (z, y, x, bz, by, bx))}})


def _surface(found) -> pd.Series:
    """Faces of each non-zero label to a different id (background included)."""
    sides = np.concatenate([np.concatenate([a, b]) for a, b, _, _ in found]).astype(np.int64)
    sides = sides[sides != 0]
    ids, counts = np.unique(sides, return_counts=True)
    return pd.Series(counts, index=ids)


def _combine(results: list, source: str) -> Contacts:
    faces = pd.concat([r["faces"] for r in results], ignore_index=True)
    sizes = pd.concat([r["size"] for r in results]).groupby(level=0).sum()
    surface = pd.concat([r["surface"] for r in results]).groupby(level=0).sum()
    sizes = sizes[sizes.index != 0]
    segments = pd.DataFrame({"size": sizes, "surface": surface.reindex(sizes.index, fill_value=0)})
    segments.index.name = "label"
    if len(results) > 1 and len(faces):
        faces = _merge_blocks(faces)
    pairs = faces.drop(columns=["sz", "sy", "sx"]).reset_index(drop=True)
    moments = pairs[list(MOMENTS)].to_numpy(np.float64).reshape(len(pairs), len(MOMENTS))
    pairs["boundary_mean"] = pairs["boundary_sum"] / pairs["contact"] if source != "none" else np.nan
    pairs["flatness"] = contact_flatness(pairs["contact"].to_numpy(), moments)
    pairs = pairs[["a", "b", "contact", "boundary_sum", "boundary_mean", "flatness", "z", "y", "x", "bz", "by", "bx"]]
    return Contacts(pairs.astype({"a": np.int64, "b": np.int64, "contact": np.int64}), segments, source, moments)


def _merge_blocks(faces: pd.DataFrame) -> pd.DataFrame:
    """Sum the per-block rows of each pair; keep the block face nearest the whole centre."""
    summed = ["contact", "boundary_sum", "sz", "sy", "sx", *MOMENTS]
    sums = faces.groupby(["a", "b"])[summed].transform("sum")
    distance = sum((faces[c] - sums["s" + c] / sums["contact"]) ** 2 for c in "zyx")
    nearest = faces.assign(distance=distance).sort_values(["a", "b", "distance"]).drop_duplicates(["a", "b"])
    totals = faces.groupby(["a", "b"], as_index=False)[summed].sum()
    return totals.merge(nearest[["a", "b", "z", "y", "x", "bz", "by", "bx"]], on=["a", "b"])


def _boundary_scale(boundary) -> float:
    kind = np.dtype(boundary.dtype).kind
    if kind == "f":
        return 1.0
    if kind in "iu":
        return float(np.iinfo(boundary.dtype).max)
    raise ValueError(f"boundary must be a probability map (floats in [0, 1] or integers), not {boundary.dtype}.")


def intensity_levels(image) -> tuple[float, float]:
    """1st and 99th percentile from a strided sample: the image's contrast range."""
    step = max(1, math.ceil((math.prod(image.shape) / 2_000_000) ** (1 / 3)))
    sample = np.asarray(image[::step, ::step, ::step], dtype=np.float32)
    low, high = np.percentile(sample, [1, 99])
    if not high > low:
        raise ValueError("The image is flat (no contrast between its 1st and 99th percentile); "
                         "pass a boundary map instead, or no image.")
    return float(low), float(high)


def _gaussian_radius(sigma: float) -> int:
    return int(4.0 * float(sigma) + 0.5)  # scipy's gaussian_filter radius at truncate=4
