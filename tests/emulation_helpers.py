"""Shared builders for the emulation tests: a random signed network and Poisson-like kicks."""

import numpy as np
import pandas as pd

from napari_wbe.connectome import Connectome


def random_connectome(n=300, targets=30, seed=0, excitatory=0.7, id_offset=1000, log_mean=1.0):
    rng = np.random.default_rng(seed)
    pre = np.repeat(np.arange(n), targets)
    post = np.concatenate([rng.choice(np.delete(np.arange(n), i), targets, replace=False) for i in range(n)])
    syn = np.maximum(1, np.round(rng.lognormal(log_mean, 0.8, len(pre)))).astype(np.int64)
    neuron_sign = np.where(rng.random(n) < excitatory, 1, -1)
    ids = np.arange(n, dtype=np.int64) * 7 + id_offset  # ids != indices, to catch mix-ups
    edges = pd.DataFrame({"pre": ids[pre], "post": ids[post], "syn_count": syn,
                          "sign": neuron_sign[pre].astype(np.int8)})
    return Connectome(neurons=pd.DataFrame(index=pd.Index(ids, name="neuron_id")), edges=edges)


def poisson_events(ids, rate_hz, duration_ms, seed, dt=0.1, trials=1):
    """Kick events at most one per step per neuron (as Brian2's PoissonInput with N=1)."""
    rng = np.random.default_rng(seed)
    n_steps = int(round(duration_ms / dt))
    rows = []
    for trial in range(trials):
        hit = rng.random((n_steps, len(ids))) < rate_hz * dt / 1000
        k, i = np.nonzero(hit)
        rows.append(pd.DataFrame({"t_ms": k * dt, "neuron": np.asarray(ids)[i], "trial": trial}))
    return pd.concat(rows, ignore_index=True)
