"""The compiled time-step loop: DESIGN.md's LIF model, in Brian2's order, one trial at a time.

One call advances one trial from step k0 to k1; the caller (simulate.py) chunks the run so
it can report progress and run trials on several threads (`nogil=True`). Random numbers are
a hash of (trial key, step, stimulus slot), not a stateful generator, so a trial's spikes do
not depend on chunking, thread count or which thread ran it.

Only active neurons are integrated: a neuron at rest (g == 0 and v at a fixed point of the
update, below threshold) would be left bit-identical by it, so skipping it changes nothing,
and in the reference model's regime most of a brain is at rest. A neuron wakes when input
reaches it and rests again once g has been flushed to 0 and v has decayed to where rounding
holds it: v_0 itself, or (float32 especially) an ulp away, where (v - v_0) * a rounds back
to the same value.

Refractory neurons are integrated with the others and then put back: while refractory,
v == v_rst and g == 0 exactly (reset sets them, input to g is dropped, stimulated neurons
have no refractory period), so restoring v = v_rst is the same as not integrating.
"""

from __future__ import annotations

import numba
import numpy as np


def propagator(t_mbr, tau, dt):
    """(a, b, c): exact solution over dt of dv/dt = (v0 - v + g)/t_mbr, dg/dt = -g/tau.

    v(dt) = v0 + (v - v0) a + g b,  g(dt) = g c,  a = e^(-dt/t_mbr),  c = e^(-dt/tau),
    b = tau/(tau - t_mbr) (c - a), written with expm1 so it stays accurate as tau -> t_mbr,
    where it tends to the degenerate solution b = (dt/t_mbr) a.
    """
    t_mbr = np.asarray(t_mbr, dtype=np.float64)
    tau = np.asarray(tau, dtype=np.float64)
    a = np.exp(-dt / t_mbr)
    c = np.exp(-dt / tau)
    diff = tau - t_mbr
    same = diff == 0
    safe = np.where(same, 1.0, diff)
    b = np.where(same, a * dt / t_mbr, tau * a * np.expm1(dt * diff / (t_mbr * tau)) / safe)
    return a, b, c


@numba.njit(inline="always")
def _mix(x):
    # splitmix64 finaliser: a good 64-bit hash, so hashed counters behave as random numbers.
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@numba.njit(inline="always")
def uniform(key, step, slot):
    """Uniform [0, 1) number for (trial key, step, stimulus slot)."""
    x = _mix(key + np.uint64(step) * np.uint64(0x9E3779B97F4A7C15))
    x = _mix(x + np.uint64(slot) * np.uint64(0xD1B54A32D192ED03) + np.uint64(1))
    return (x >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@numba.njit(inline="always")
def _wake(i, active, n_active, is_active):
    if not is_active[i]:
        is_active[i] = 1
        active[n_active] = i
        n_active += 1
    return n_active


@numba.njit(cache=True, nogil=True)
def run_chunk(k0, k1, v, g, r_until, ring, ring_count, active, is_active, n_active,
              per_neuron, a, b, c, v0, vth, vrst, refr, can_rest, g_floor,
              indptr, targets, weights, delay,
              seg_neuron, seg_start, seg_stop, seg_p, kick, key,
              ev_step, ev_neuron, ev_pos,
              rec_idx, trace, out_step, out_neuron, n_out):
    """Advance one trial over steps k0 <= k < k1; returns the (maybe grown) spike buffers
    and the new number of active neurons."""
    window = ring.shape[0]
    for k in range(k0, k1):
        for r in range(rec_idx.shape[0]):  # traces hold v at the start of the step, as Brian2 records
            trace[r, k] = v[rec_idx[r]]
        slot = k % window
        # 1-2. integrate exactly over dt, then threshold (only neurons not refractory may spike).
        # Neurons at rest (v == v_0, g == 0) are skipped: the update would leave them bit-identical.
        count = 0
        for q in range(n_active):
            i = active[q]
            p = i if per_neuron else 0  # one template neuron: its constants stay in registers
            vi = v0[p] + (v[i] - v0[p]) * a[p] + g[i] * b[p]
            v[i] = vi
            gi = g[i] * c[p]
            g[i] = gi if abs(gi) > g_floor else 0.0  # flush: invisible in v, and lets i rest again
            if vi > vth[p] and k >= r_until[i]:
                ring[slot, count] = i
                count += 1
                r_until[i] = k + max(refr[i], 1)  # the spike step itself is refractory
        if count > 1:  # index order, as Brian2's thresholder: keeps float sums in its order
            ring[slot, :count] = np.sort(ring[slot, :count])
        ring_count[slot] = count
        # undo the integration of neurons still refractory (their true state is v_rst, g = 0)
        for d in range(1, window):
            past = (k - d) % window
            for q in range(ring_count[past]):
                j = ring[past, q]
                if k < r_until[j]:
                    v[j] = vrst[j]
        # 3. deliver spikes sent D steps ago; input to a refractory neuron is dropped
        if k >= delay:
            sent = (k - delay) % window
            for q in range(ring_count[sent]):
                j = ring[sent, q]
                for syn in range(indptr[j], indptr[j + 1]):
                    t = targets[syn]
                    if k >= r_until[t]:
                        g[t] += weights[syn]
                        n_active = _wake(t, active, n_active, is_active)
        # ... then the Poisson kicks and the explicit input events of this step, onto v
        for q in range(seg_neuron.shape[0]):
            if seg_start[q] <= k < seg_stop[q] and uniform(key, k, q) < seg_p[q]:
                v[seg_neuron[q]] += kick
                n_active = _wake(seg_neuron[q], active, n_active, is_active)
        while ev_pos[0] < ev_step.shape[0] and ev_step[ev_pos[0]] == k:
            v[ev_neuron[ev_pos[0]]] += kick
            n_active = _wake(ev_neuron[ev_pos[0]], active, n_active, is_active)
            ev_pos[0] += 1
        # 4. reset this step's spikers, and keep them
        if n_out + count > out_step.shape[0]:
            size = max(2 * out_step.shape[0], n_out + count)
            grown_step = np.empty(size, dtype=out_step.dtype)
            grown_neuron = np.empty(size, dtype=out_neuron.dtype)
            grown_step[:n_out] = out_step[:n_out]
            grown_neuron[:n_out] = out_neuron[:n_out]
            out_step, out_neuron = grown_step, grown_neuron
        for q in range(count):
            i = ring[slot, q]
            v[i] = vrst[i]
            g[i] = 0.0
            out_step[n_out] = k
            out_neuron[n_out] = i
            n_out += 1
        # neurons at rest leave the active list: g is 0 and the next update would leave v
        # bit-identical (v_0 itself, or a value an ulp away that rounding holds fixed, as
        # float32 does), so skipping them changes nothing until input wakes them
        kept = 0
        for q in range(n_active):
            i = active[q]
            p = i if per_neuron else 0
            if (g[i] == 0.0 and v0[p] + (v[i] - v0[p]) * a[p] + g[i] * b[p] == v[i] and v[i] <= vth[p]
                    and can_rest[i]):
                is_active[i] = 0
            else:
                active[kept] = i
                kept += 1
        n_active = kept
    return out_step, out_neuron, n_out, n_active


class TrialState:
    """Everything one trial carries from chunk to chunk."""

    def __init__(self, n, window, v_init, v_th, dtype, n_rec, n_steps, expected_spikes):
        self.v = v_init.astype(dtype, copy=True)
        self.g = np.zeros(n, dtype=dtype)
        # Only neurons that could spike at rest (v_0 > v_th) start active; the rest wake on input.
        self.can_rest = (v_init <= v_th).astype(np.uint8)
        self.active = np.zeros(n, dtype=np.int32)
        restless = np.flatnonzero(self.can_rest == 0)
        self.active[:len(restless)] = restless
        self.n_active = len(restless)
        self.is_active = (1 - self.can_rest).astype(np.uint8)
        self.r_until = np.zeros(n, dtype=np.int64)
        self.ring = np.empty((window, n), dtype=np.int32)  # spike lists of the last `window` steps
        self.ring_count = np.zeros(window, dtype=np.int64)
        self.ev_pos = np.zeros(1, dtype=np.int64)
        self.trace = np.zeros((n_rec, n_steps), dtype=dtype)
        size = max(1024, int(expected_spikes))
        self.out_step = np.empty(size, dtype=np.int32)
        self.out_neuron = np.empty(size, dtype=np.int32)
        self.n_out = 0


def flush_floor(dtype) -> float:
    """|g| below this is set to 0. g x b (b ~ dt/t_mbr) then stays far below half an ulp of
    v near v_0 (about 2e-6 mV in float32, 4e-15 mV in float64), so v is bit-identical to an
    unflushed run; and g never reaches the denormal range, where arithmetic is 100x slower."""
    return 1e-10 if np.dtype(dtype) == np.float32 else 1e-18
