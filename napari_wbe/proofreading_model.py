"""The merge model: how likely two touching segments are one cell, and what joining them is worth.

- probability: a logistic function of the mean boundary strength along the contact, the
  enclosure (contact / surface of the smaller segment), log10 of the smaller segment's size
  and the contact's flatness (proofreading_contacts), and once learned the mean membrane
  probability along the contact (proofreading_faces);
- impact: the split VI removed if they are one cell (voxel-bits).
`suspects` ranks its "merge?" rows with it; `MergeQueue` (proofreading_queue) also refits it
to a proofreader's answers.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from .proofreading_contacts import contact_flatness

# Logistic weights: intercept, mean boundary, enclosure, log10(smaller size), contact
# flatness. Fitted to the 867 touching fragment pairs of the gala FIB-SEM crop (fibsem_small,
# EM boundaries; ROC AUC 0.975 there, 0.970 without flatness), rounded: refit with
# `python benchmarks/fit_queue_weights.py`. Never fit them on the medulla cube: the queue
# benchmark evaluates there, and weights that saw its answers overstate the queue. There
# these weights rank pairs well (ROC AUC 0.91) but are too sure of merges, most between big
# segments (top 500 by score: mean p 0.56, 22% right), so refitting to a proofreader's
# answers (learn=True, the default) pays: 1,137 decisions to halve the cube's VI with
# learning, 1,707 without (the queue in random order: 5,654 on average); without what keep-apart answers
# imply 1,163 and 1,894, without flatness too 1,200 and 1,960.
DEFAULT_WEIGHTS = np.array([7.63, -7.36, 2.68, -0.59, -1.16])
WEIGHTS_FITTED_ON = "fibsem_small (gala example crop, 867 fragment pairs, EM boundaries)"
FEATURE_NAMES = ["boundary_mean", "enclosure", "log10_size", "flatness", "learned_membrane"]
GEOMETRY = len(DEFAULT_WEIGHTS)  # intercept + inputs known before any answer
# Barcode evidence, as log-odds added to the model (an offset, not a fitted weight): codes
# are random, so two cells may share one (weak evidence for), but a cell never carries two
# (strong against).
SAME_CODE_LOG_ODDS = 3.0
DIFFERENT_CODE_LOG_ODDS = -6.0


def merge_features(boundary_mean, contact, surface_small, size_small, flatness,
                   learned_membrane=None) -> np.ndarray:
    """(n, 4) model inputs, (n, 5) with a learned membrane probability along the contact; a
    pair without boundary measurements counts as undecided (0.5)."""
    boundary = np.nan_to_num(np.asarray(boundary_mean, np.float64), nan=0.5)
    enclosure = np.asarray(contact, np.float64) / np.maximum(np.asarray(surface_small, np.float64), 1.0)
    size = np.log10(np.maximum(np.asarray(size_small, np.float64), 1.0))
    columns = [boundary, enclosure, size, np.asarray(flatness, np.float64)]
    if learned_membrane is not None:
        columns.append(np.asarray(learned_membrane, np.float64))
    return np.column_stack(columns)


def merge_probability(features: np.ndarray, weights=DEFAULT_WEIGHTS, offset=0.0) -> np.ndarray:
    """offset: log-odds added to each pair's (code_log_odds)."""
    z = weights[0] + features @ np.asarray(weights[1:], np.float64) + offset
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def code_log_odds(code_a, code_b) -> np.ndarray:
    """The barcode offset of segment pairs from their codes (0: none decoded)."""
    a, b = np.asarray(code_a), np.asarray(code_b)
    known = (a > 0) & (b > 0)
    return np.where(known & (a == b), SAME_CODE_LOG_ODDS, 0.0) + np.where(known & (a != b), DIFFERENT_CODE_LOG_ODDS, 0.0)


def record_features(face_moments: np.ndarray, membrane, records) -> np.ndarray:
    """Model inputs of `MergeQueue` pair records (rows of the contacts table the contact is
    made of, faces, boundary sum, the smaller segment's surface and size, ...): contacts
    made of several rows add their face moments; membrane: the learned (summed, counted)
    membrane probability per row, or None."""
    if not records:
        return np.zeros((0, len(DEFAULT_WEIGHTS) - (membrane is None)))
    n, s, surface, size = (np.array([r[k] for r in records], np.float64) for k in range(1, 5))
    which = np.repeat(np.arange(len(records)), [len(r[0]) for r in records])  # record of each row
    rows = np.concatenate([r[0] for r in records])
    moments = np.column_stack([np.bincount(which, weights=column, minlength=len(records))
                               for column in face_moments[rows].T])
    learned = None
    if membrane is not None:
        summed, counted = membrane
        total = np.bincount(which, weights=counted[rows], minlength=len(records))
        learned = np.bincount(which, weights=summed[rows], minlength=len(records)) / np.maximum(total, 1)
        learned = np.where(total > 0, learned, np.nan_to_num(s / n, nan=0.5))  # no sampled face: as measured
    return merge_features(s / n, n, surface, size, contact_flatness(n, moments), learned)


def record_code_offsets(records) -> np.ndarray:
    """The barcodes' log-odds of `MergeQueue` pair records (their last two fields)."""
    return code_log_odds([r[5] for r in records], [r[6] for r in records])


def merge_impact(size_a, size_b) -> np.ndarray:
    """Voxel-bits of split VI removed by joining two pure pieces of one cell."""
    a, b = np.asarray(size_a, np.float64), np.asarray(size_b, np.float64)
    return (a + b) * np.log2(a + b) - a * np.log2(np.maximum(a, 1)) - b * np.log2(np.maximum(b, 1))


def fit_weights(features: np.ndarray, accepted: np.ndarray, prior=DEFAULT_WEIGHTS, strength=1.0, offset=0.0):
    """Logistic regression of the answers on the features, with a gaussian prior around
    `prior` (`strength` = its precision, one for all weights or one per weight), so a
    handful of answers cannot swing it far; `offset`: each answer's fixed log-odds (barcodes)."""
    x = np.column_stack([np.ones(len(features)), features])
    y = np.asarray(accepted, np.float64)
    prior = np.asarray(prior, np.float64)
    strength = np.broadcast_to(np.asarray(strength, np.float64), prior.shape)

    def loss(w):
        z = x @ w + offset
        diff = w - prior
        value = np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * diff @ (strength * diff)
        grad = x.T @ (1.0 / (1.0 + np.exp(-z)) - y) + strength * diff
        return value, grad

    return minimize(loss, prior.copy(), jac=True, method="L-BFGS-B").x
