"""Where a segmentation is probably wrong, ranked so a proofreader's first looks pay most.

    table = suspects(labels, image=em)                        # EM: boundaries from membranes
    table = suspects(labels, boundary=probability_map)        # or a boundary prediction
    table = suspects(labels, barcode_image=tags, codebook=cb) # barcodes add split? rows

One row per suggestion, best first:
- "merge?": two touching segments that look like one cell (a likely false split). From
  the contact between them (see proofreading_contacts and proofreading_queue: mean
  boundary strength along the contact, how much of the smaller one's surface it is, its
  size, how flat the contact is); with barcodes, the same code makes it likelier and
  different codes unlikely.
- "split?": a segment whose interior decodes to two barcodes (a likely false merge).
- "orphan": a segment smaller than `min_size` voxels, usually a crumb of a bigger cell.
Columns: kind, labels (tuple of ids), z, y, x (where to look: the middle of the contact,
a voxel of the second code, a voxel of the crumb), probability (that it is an error),
score, reason (a sentence with the numbers).

score = probability x impact, the expected drop in variation of information (bits,
relative to all labelled voxels) if the suggestion is acted on and right: for a merge
the split-VI that joining two pure pieces removes, for a split the merge-VI that
separating the two codes' voxels removes. One unit for every kind, so one ranking; a
probable error on big segments outranks a certain one on crumbs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .chunked_labels import first_voxel_index
from .proofreading_contacts import contact_table
from .proofreading_model import (
    DEFAULT_WEIGHTS,
    code_log_odds,
    merge_features,
    merge_impact,
    merge_probability,
)

COLUMNS = ["kind", "labels", "z", "y", "x", "probability", "score", "reason"]


def suspects(labels, image=None, boundary=None, barcode_image=None, codebook=None, *, min_size: int = 100,
             min_contact: int = 5, sigma: float = 1.5, dark_membranes: bool = True, weights=None,
             min_code_voxels: int = 30, min_code_fraction: float = 0.1, max_rows: int | None = None,
             contacts=None, evidence=None, progress=None) -> pd.DataFrame:
    """Ranked suggestions of errors in `labels` (numpy or dask, z, y, x); see the module docstring.

    image: EM (membranes dark; dark_membranes=False if bright), smoothed with `sigma`.
    boundary: a boundary probability map (1 = membrane), used instead of the image.
    barcode_image, codebook: (c, z, y, x) tag channels and their codebook (learned if None).
    min_size: segments smaller than this many voxels are orphans.
    min_contact: touching pairs with fewer faces are not offered as merges.
    weights: the merge model's logistic weights (default DEFAULT_WEIGHTS).
    min_code_voxels, min_code_fraction: what makes a second barcode in a segment "in force".
    contacts: a precomputed `contact_table(labels, ...)` to reuse.
    evidence: a precomputed `barcode_evidence(labels, barcode_image, codebook)` to reuse.
    progress: callable(done, total).
    """
    if np.dtype(labels.dtype).kind not in "iu" or labels.ndim != 3:
        raise ValueError(f"labels must be a 3-D integer volume (z, y, x); got {labels.ndim}-D {labels.dtype}.")
    if contacts is None:
        contacts = contact_table(labels, image=image, boundary=boundary, sigma=sigma,
                                 dark_membranes=dark_membranes, progress=progress)
    segments = contacts.segments
    total = max(int(segments["size"].sum()), 1)
    if evidence is None and barcode_image is not None:
        from .proofreading_barcode_checks import barcode_evidence

        evidence = barcode_evidence(labels, barcode_image, codebook=codebook)
    rows = [_merge_rows(contacts, min_contact, weights, evidence, total),
            _orphan_rows(labels, contacts, min_size, total)]
    if evidence is not None:
        rows.append(_split_rows(evidence, segments, min_code_voxels, min_code_fraction, total))
    table = pd.concat([r for r in rows if len(r)], ignore_index=True) if any(len(r) for r in rows) else \
        pd.DataFrame(columns=COLUMNS)
    table = table.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    return table[COLUMNS] if max_rows is None else table[COLUMNS].head(max_rows)


def _merge_rows(contacts, min_contact, weights, evidence, total) -> pd.DataFrame:
    pairs = contacts.pairs[contacts.pairs["contact"] >= min_contact]
    if contacts.boundary_source == "none":
        pairs = pairs.assign(boundary_mean=np.nan)
    size = contacts.segments["size"]
    surface = contacts.segments["surface"]
    size_a, size_b = size.reindex(pairs["a"]).to_numpy(), size.reindex(pairs["b"]).to_numpy()
    a_smaller = size_a <= size_b
    small_surface = np.where(a_smaller, surface.reindex(pairs["a"]).to_numpy(), surface.reindex(pairs["b"]).to_numpy())
    features = merge_features(pairs["boundary_mean"], pairs["contact"], small_surface, np.minimum(size_a, size_b),
                              pairs["flatness"])
    offset = 0.0
    if evidence is not None:
        code = evidence.segments["code"]
        offset = code_log_odds(code.reindex(pairs["a"]).fillna(0).to_numpy(int),
                               code.reindex(pairs["b"]).fillna(0).to_numpy(int))
    probability = merge_probability(features, DEFAULT_WEIGHTS if weights is None else np.asarray(weights), offset)
    score = probability * merge_impact(size_a, size_b) / total
    names = evidence.segments["code_name"] if evidence is not None else None
    reasons = [_merge_reason(n, b, e, f, None if names is None else (names.get(a, ""), names.get(b_, "")))
               for n, b, e, f, a, b_ in zip(pairs["contact"].tolist(), pairs["boundary_mean"].tolist(),
                                            features[:, 1].tolist(), pairs["flatness"].tolist(),
                                            pairs["a"].tolist(), pairs["b"].tolist())]
    return pd.DataFrame({"kind": "merge?", "labels": list(zip(pairs["a"].tolist(), pairs["b"].tolist())),
                         "z": pairs["z"].to_numpy(), "y": pairs["y"].to_numpy(), "x": pairs["x"].to_numpy(),
                         "probability": probability, "score": score, "reason": reasons})


def _merge_reason(contact, boundary, enclosure, flatness, code_names) -> str:
    text = f"touch over {contact:,} faces ({enclosure:.0%} of the smaller's surface)"
    # Medulla cube, contacts of 30+ faces: mean flatness 0.67 inside one cell, 1.05 between two.
    shape = "ragged" if flatness < 0.7 else ("sheet-like" if flatness > 1.1 else "neither")
    text += f"; contact {shape} (flatness {flatness:.2f})"
    if not np.isnan(boundary):
        strength = "weak" if boundary < 0.35 else ("moderate" if boundary < 0.6 else "strong")
        text += f"; mean boundary {boundary:.2f} ({strength})"
    if code_names is not None and code_names[0] and code_names[1]:
        text += (f"; same barcode {code_names[0]}" if code_names[0] == code_names[1]
                 else f"; different barcodes {code_names[0]} / {code_names[1]}")
    return text


def _orphan_rows(labels, contacts, min_size, total) -> pd.DataFrame:
    segments = contacts.segments
    small = segments[segments["size"] < min_size]
    if small.empty:
        return pd.DataFrame(columns=COLUMNS)
    pairs = contacts.pairs
    # Each orphan's biggest contact: the segment it most likely belongs to, and (the
    # contact's voxel on the orphan's side) a voxel to look at.
    sides = pd.concat([pairs.rename(columns={"a": "label", "b": "other"}),
                       pairs.rename(columns={"b": "label", "a": "other", "z": "bz", "y": "by", "x": "bx",
                                             "bz": "z", "by": "y", "bx": "x"})], ignore_index=True)
    sides = sides[sides["label"].isin(small.index)].sort_values("contact", ascending=False, kind="stable")
    best = sides.drop_duplicates("label").set_index("label").reindex(small.index)
    isolated = best.index[best["other"].isna()]
    if len(isolated):  # no neighbour to borrow a voxel from: its first voxel in C order
        where = np.unravel_index(first_voxel_index(labels).reindex(isolated).to_numpy(np.int64), labels.shape)
        best.loc[isolated, ["z", "y", "x"]] = np.column_stack(where)
    size = small["size"].to_numpy(np.float64)
    other = best["other"].fillna(0).to_numpy(np.int64)
    other_size = segments["size"].reindex(other).fillna(1).to_numpy(np.float64)
    probability = 1.0 - size / min_size  # the smaller the crumb, the surer
    impact = np.where(other > 0, merge_impact(size, other_size), size)
    reasons = [f"{int(s):,} voxel{'s' if s != 1 else ''} (< {min_size:,})"
               + (f"; touches {o} most, over {int(n):,} faces" if o > 0 else "; touches no other segment")
               for s, o, n in zip(size, other, best["contact"].fillna(0))]
    return pd.DataFrame({"kind": "orphan", "labels": [(int(i),) for i in small.index],
                         **{c: best[c].to_numpy(np.int64) for c in "zyx"},
                         "probability": probability, "score": probability * impact / total, "reason": reasons})


def _split_rows(evidence, segments, min_voxels, min_fraction, total) -> pd.DataFrame:
    from .proofreading_barcode_checks import two_code_segments

    found = two_code_segments(evidence, min_voxels, min_fraction)
    if found.empty:
        return pd.DataFrame(columns=COLUMNS)
    fraction = found["fraction"].to_numpy(np.float64)
    # A second code at the decoding noise floor (a few %) means nothing; from a quarter of
    # the votes on it is as sure as barcodes get.
    probability = np.clip((fraction - min_fraction / 2) / 0.25, 0.0, 1.0)
    size = segments["size"].reindex(found["label"]).fillna(0).to_numpy(np.float64)
    entropy = -(fraction * np.log2(fraction) + (1 - fraction) * np.log2(1 - fraction))
    reasons = [f"interior voxels decode to two barcodes: {a} ({n1:,} voxels) and {b} ({n2:,}, {f:.0%})"
               for a, b, n1, n2, f in zip(found["first"], found["second"], found["n_first"], found["n_second"],
                                          fraction)]
    return pd.DataFrame({"kind": "split?", "labels": [(int(i),) for i in found["label"]],
                         "z": found["z"].to_numpy(), "y": found["y"].to_numpy(), "x": found["x"].to_numpy(),
                         "probability": probability, "score": probability * size * entropy / total,
                         "reason": reasons})
