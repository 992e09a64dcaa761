"""Seeded split of one segment into parts: a compact watershed inside the segment.

With an image, the watershed floods a membrane map from the seeds: how sheet-like and
dark (membranes="dark", EM) or bright (a membrane stain) the image is at each voxel, the
largest eigenvalue of its Hessian. Raw intensity does poorly in EM: mitochondria and
vesicles are as dark as membranes, and the cut follows them. Without an image it floods
the distance to the segment's edge, so the cut falls at a neck. A little compactness
keeps each part near its seeds where the membrane has gaps.

Measured on 30 touching pairs of real FIB-SEM bodies (benchmarks/bench_proofreading.py,
a 96^3 box around their contact, one seed per body): median IoU 0.92 with the membrane
map, 0.51-0.58 with smoothed intensity, 0.56 with the distance transform.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import hessian_matrix
from skimage.segmentation import watershed

from .proofreading_contacts import largest_eigenvalue

MEMBRANES = ("dark", "bright")


def split_parts(mask: np.ndarray, seeds: list[np.ndarray], image: np.ndarray | None = None, *,
                membranes: str = "dark", compactness: float | None = None, sigma: float = 1.5) -> np.ndarray:
    """Parts (1..len(seeds), 0 outside `mask`) of the segment `mask`, one per seed group.

    seeds: one (n, 3) array of voxel positions (inside the mask's box) per part.
    """
    if membranes not in MEMBRANES:
        raise ValueError(f"membranes must be one of {MEMBRANES}, not {membranes!r}.")
    markers = np.zeros(mask.shape, np.int32)
    for part, points in enumerate(seeds, start=1):
        z, y, x = np.asarray(points, dtype=np.int64).reshape(-1, 3).T
        markers[z, y, x] = part
    if image is None:
        # deeper inside = lower: basins are the thick parts, ridges the necks between them
        elevation = -ndi.distance_transform_edt(mask).astype(np.float32)
        elevation /= max(float(-elevation.min()), 1.0)
        compactness = 0.0 if compactness is None else compactness
    else:
        elevation = membrane_map(np.asarray(image, dtype=np.float32), mask, sigma, membranes)
        compactness = DEFAULT_COMPACTNESS if compactness is None else compactness
    return watershed(elevation, markers, mask=mask, compactness=compactness).astype(np.int32)



def membrane_map(image: np.ndarray, mask: np.ndarray, sigma: float, membranes: str) -> np.ndarray:
    """0..1: how strongly each voxel lies on a membrane-like sheet (dark or bright)."""
    sign = 1.0 if membranes == "dark" else -1.0  # a dark sheet curves the intensity upwards across it
    hzz, hzy, hzx, hyy, hyx, hxx = hessian_matrix(sign * image, sigma=sigma, order="rc",
                                                  use_gaussian_derivatives=False)
    curvature = largest_eigenvalue(hzz, hyy, hxx, hzy, hzx, hyx)
    top = np.percentile(curvature[mask], 99) if mask.any() else 1.0
    return np.clip(curvature / max(float(top), 1e-6), 0.0, 1.0).astype(np.float32)


# Best of 0.0003-0.03 on the pairs above (0.003: median 0.73; 0.03: 0.49).
DEFAULT_COMPACTNESS = 0.001
