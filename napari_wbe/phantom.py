"""A synthetic "mini brain" with ground truth for every stage of the pipeline.

``mini_brain()`` builds a small block of neuropil and renders it on one voxel grid as an
EM volume and as an expansion-microscopy (ExM) barcode volume, with the truth that
decoding, proofreading, connectome extraction and emulation are scored against:

1. Identity: a neurotransmitter per neuron (ACh most common, then GABA, Glu, a few
   aminergic), a cell type derived from it (T1..T5, each with its own morphology) and a
   random barcode: each of ``n_channels`` tags is expressed with probability
   ``expression_p`` (at least one), at its own brightness. Codes are random, so two
   neurons may share one, as in real barcoding experiments.
2. Geometry (:mod:`napari_wbe.phantom_geometry`): branching tubes in physical space,
   sized to fill ``fill_fraction`` of the volume; each voxel goes to the nearest tube
   relative to its radius, so neighbouring neurons touch.
3. Synapses on contact faces between touching neurons (pre voxel in the presynaptic
   neuron next to a post voxel in the postsynaptic one); heavy-tailed counts per pair.
   The connectome is exactly the synapse table grouped by (pre, post).
4. EM: bright cytoplasm with dark organelle-like blobs, dark membranes on every label
   boundary, greyer extracellular space, synaptic densities and vesicle clouds, blur,
   noise and FIB-SEM-like slice-to-slice brightness jitter.
5. ExM (:mod:`napari_wbe.phantom_exm`): tags fill their neurons with punctate dropout,
   optics blur and camera noise, imaged ``tags_per_round`` at a time in rounds shifted
   by stage drift, with a reference stain re-imaged every round. Per-voxel thresholding
   is noisy; denoising plus nearest codeword works. ``mb.fragments`` over-segments the
   truth into pieces, as an automatic watershed does, for decoders to pool over.

Every stage (and every barcode channel) draws from its own ``np.random.default_rng``
stream spawned from ``seed``: the same arguments give byte-identical output whatever
the thread scheduling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter

from napari_wbe import phantom_contacts as contacts
from napari_wbe import phantom_exm as exm
from napari_wbe import phantom_geometry as geometry
from napari_wbe.connectome import NT_SIGN, Connectome

NT_PROBABILITIES = {"ACh": 0.50, "GABA": 0.22, "Glu": 0.18, "DA": 0.04, "5-HT": 0.03, "OA": 0.03}

# Cell types follow the transmitter (cholinergic cells come thick or thin) so a type
# means something: it predicts both the sign of the outputs and the morphology.
CELL_TYPES = {
    "T1": geometry.CellShape(radius=1.25, branches=(1, 2), soma_p=0.35),  # thick ACh
    "T2": geometry.CellShape(radius=0.85, branches=(2, 3), soma_p=0.10),  # thin ACh
    "T3": geometry.CellShape(radius=1.00, branches=(1, 3), soma_p=0.25),  # GABA
    "T4": geometry.CellShape(radius=1.00, branches=(1, 2), soma_p=0.20),  # Glu
    "T5": geometry.CellShape(radius=0.70, branches=(2, 3), soma_p=0.05),  # aminergic
}
_TYPE_OF_NT = {"GABA": "T3", "Glu": "T4", "DA": "T5", "5-HT": "T5", "OA": "T5"}

# One random stream per stage; new stages go at the end so older streams stay the same.
_STAGES = ("identity", "geometry", "synapses", "em", "barcodes", "rounds", "reference",
           "fragments")


@dataclass(repr=False)
class MiniBrain:
    """A synthetic volume and its ground truth; all arrays share one z, y, x grid.

    em: uint8 (z, y, x) EM rendering.
    barcode_image: (c, z, y, x) ExM tag channels (uint16 by default, or float32).
    labels: uint32 (z, y, x) truth; 0 = extracellular space, neuron ids 1..n_neurons.
    codebook: bool (n_neurons, n_channels); row i is neuron id i + 1.
    synapses: one row per synapse: pre_z, pre_y, pre_x, post_z, post_y, post_x (voxel
        indices), pre, post (neuron ids), nt (presynaptic transmitter), confidence.
    neurons: index neuron_id; columns nt, cell_type, n_voxels, barcode ("0101..").
    connectome: the synapses grouped by (pre, post).
    voxel_size: nm per voxel (z, y, x), in tissue units; z includes the anisotropy.
    expansion_factor: how much the ExM sample was expanded; ``barcode_voxel_size`` is
        the voxel size in expanded units.
    seed: the seed that rebuilds this brain (a fresh one if None was given).
    channel_names: one name per barcode channel ("tag01", ...).
    round_of_channel: int64 (n_channels,): the imaging round (0, 1, ...) of each channel.
    round_shifts: float64 (n_rounds, 3): the shift (z, y, x voxels) of every image of a
        round, round 0 = 0; what sits at voxel p in round 0 appears at p + shift.
    reference_image: (n_rounds, z, y, x) pan-neuronal reference stain imaged in every
        round, shifted like its round; same dtype as barcode_image.
    fragments (computed on first use, then cached): uint32 (z, y, x) over-segmentation
        into connected pieces of about ``fragment_size`` voxels, each inside one neuron;
        ids 1..n. ``fragment_to_neuron``: uint32 (n + 1,), the neuron of each fragment,
        [0] = 0, so ``fragment_to_neuron[fragments]`` equals ``labels``.
    """

    em: np.ndarray
    barcode_image: np.ndarray
    labels: np.ndarray
    codebook: np.ndarray
    synapses: pd.DataFrame
    neurons: pd.DataFrame
    connectome: Connectome
    voxel_size: tuple[float, float, float]
    expansion_factor: float
    seed: int
    channel_names: list[str] = field(default_factory=list)
    round_of_channel: np.ndarray | None = None
    round_shifts: np.ndarray | None = None
    reference_image: np.ndarray | None = None
    fragment_size: int = 2000

    @property
    def barcode_voxel_size(self) -> tuple[float, float, float]:
        return tuple(v * self.expansion_factor for v in self.voxel_size)

    fragments = property(lambda self: self._oversegmentation[0], doc="uint32 (z, y, x) fragments")
    fragment_to_neuron = property(lambda self: self._oversegmentation[1],
                                  doc="uint32 (n_fragments + 1,): neuron of each fragment")

    @cached_property
    def _oversegmentation(self):
        return self.oversegment(self.fragment_size)

    def oversegment(self, fragment_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(fragments, fragment_to_neuron) with `fragment_size` (default: this brain's)
        voxels per fragment; deterministic for a seed. See ``phantom_exm.oversegment``."""
        stream = np.random.SeedSequence(self.seed).spawn(len(_STAGES))[_STAGES.index("fragments")]
        size = self.fragment_size if fragment_size is None else fragment_size
        return exm.oversegment(self.labels, size, np.random.default_rng(stream))

    def __repr__(self) -> str:
        return (
            f"MiniBrain(shape={self.labels.shape}, {len(self.neurons)} neurons, "
            f"{len(self.synapses)} synapses, {self.barcode_image.shape[0]} channels, "
            f"voxel_size={self.voxel_size}, seed={self.seed})"
        )


def mini_brain(
    n_neurons: int = 40,
    shape: tuple[int, int, int] = (48, 192, 192),
    n_channels: int = 18,
    seed: int | None = 0,
    *,
    voxel_size: tuple[float, float, float] = (8.0, 8.0, 8.0),
    anisotropy: float = 1.0,
    expression_p: float = 0.35,
    noise: float = 1.0,
    dropout: float = 0.4,
    blur: float = 1.0,
    expansion_factor: float = 4.0,
    tags_per_round: int | None = None,
    round_shift: float = 0.0,
    synapses_per_contact: float = 4.0,
    connection_p: float = 0.7,
    fill_fraction: float = 0.6,
    fragment_size: int = 2000,
    barcode_dtype: str = "uint16",
    workers: int | None = None,
    progress=None,
) -> MiniBrain:
    """Build a synthetic mini brain (see the module docstring for the model).

    n_neurons, shape (z, y, x voxels), n_channels (ExM tags), seed: the essentials;
        the same arguments give byte-identical output. seed=None picks a fresh seed
        and stores it in the result's ``seed``.
    voxel_size: nm per voxel (z, y, x) before anisotropy; anisotropy > 1 makes z
        coarser (z voxel = voxel_size[0] * anisotropy), so tissue looks squashed in z.
    expression_p: probability that a neuron expresses a given tag.
    noise: multiplies the imaging noise (EM detector noise and slice jitter, ExM shot
        and read noise); 0 = none. Tissue texture stays.
    dropout: fraction of tag voxels that are missing (punctate staining), in [0, 1).
    blur: ExM optics, gaussian sigma in in-plane voxels (the same nm along z); 0 = none.
    expansion_factor: ExM expansion; stored as metadata (barcode_voxel_size).
    tags_per_round: tags imaged per ExM round (default: all in one); channel c is in
        round c // tags_per_round.
    round_shift: largest stage drift of a round from round 0, in voxels along y, x (a
        third of it along z); uniform, sub-voxel; moves the round's tags and reference.
    synapses_per_contact: mean synapse count of a connected neuron pair (per direction).
    connection_p: probability that two touching neurons are connected.
    fill_fraction: fraction of the volume the neurons should fill (about 0.4-0.7).
    fragment_size: voxels per fragment of ``mb.fragments`` (made when first used).
    barcode_dtype: "uint16" (default; camera counts, half the memory: a 128x512x512
        volume with 18 channels is 1.2 GB instead of 2.4 GB) or "float32".
    workers: threads that render barcode channels in parallel (default: up to 4).
    progress: optional callable(done, total) called as stages finish (the house
        convention of every long core function; here in thousandths).
    """
    _validate(dict(locals()))  # first line: locals() are exactly the arguments
    if seed is None:  # a fresh seed, kept in the result so this brain can be rebuilt
        seed = int(np.random.SeedSequence().entropy)
    shape = tuple(int(s) for s in shape)
    spacing = np.array([voxel_size[0] * anisotropy, voxel_size[1], voxel_size[2]], float)
    streams = dict(zip(_STAGES, np.random.SeedSequence(seed).spawn(len(_STAGES))))
    rng = {name: np.random.default_rng(s) for name, s in streams.items()}
    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(round(1000 * fraction), 1000)

    neurons, codebook, brightness = _neuron_identities(rng["identity"], n_neurons, n_channels,
                                                       expression_p)
    shapes = [CELL_TYPES[t] for t in neurons["cell_type"]]
    labels = geometry.build_labels(rng["geometry"], shapes, shape, spacing, fill_fraction)
    neurons["n_voxels"] = np.bincount(labels.ravel(), minlength=n_neurons + 1)[1:]
    report(0.3, "neurons rasterised")

    synapses = _synapse_table(rng["synapses"], labels, neurons, synapses_per_contact,
                              connection_p)
    connectome = Connectome(neurons=neurons.copy(), edges=edges_from_synapses(synapses, neurons))
    report(0.4, "synapses placed")

    em = _render_em(rng["em"], labels, synapses, spacing, noise)
    report(0.55, "EM rendered")
    exm_images = exm.image_in_rounds(  # barcode_image, reference_image, rounds, shifts
        [streams[name] for name in ("barcodes", "rounds", "reference")], labels, brightness,
        spacing, tags_per_round=tags_per_round or n_channels, round_shift=round_shift,
        dropout=dropout, noise=noise, blur=blur, dtype=barcode_dtype, workers=workers,
        report=lambda done, message: report(0.55 + 0.45 * done, message),
    )
    report(1.0, "done")
    return MiniBrain(
        em=em, labels=labels, codebook=codebook, synapses=synapses, neurons=neurons,
        connectome=connectome, voxel_size=tuple(float(v) for v in spacing),
        expansion_factor=float(expansion_factor), seed=seed,
        channel_names=[f"tag{c + 1:02d}" for c in range(n_channels)],
        fragment_size=int(fragment_size), **exm_images,
    )


def _neuron_identities(rng, n_neurons, n_channels, expression_p):
    names = list(NT_PROBABILITIES)
    nt = rng.choice(names, size=n_neurons, p=list(NT_PROBABILITIES.values()))
    thick = rng.random(n_neurons) < 0.5
    cell_type = [("T1" if big else "T2") if t == "ACh" else _TYPE_OF_NT[t]
                 for t, big in zip(nt, thick)]
    codebook, brightness = exm.draw_barcodes(rng, n_neurons, n_channels, expression_p)
    barcode = ["".join("1" if bit else "0" for bit in row) for row in codebook]
    neurons = pd.DataFrame(
        {"nt": nt.astype(str), "cell_type": cell_type, "barcode": barcode},
        index=pd.Index(np.arange(1, n_neurons + 1, dtype=np.int64), name="neuron_id"),
    )
    return neurons, codebook, brightness


def _synapse_table(rng, labels, neurons, synapses_per_contact, connection_p):
    pre_voxel, post_voxel = contacts.choose_synapse_sites(rng, labels, synapses_per_contact,
                                                          connection_p)
    flat = labels.reshape(-1)
    pre = flat[pre_voxel].astype(np.int64)
    columns = {}
    for side, voxels in (("pre", pre_voxel), ("post", post_voxel)):
        for axis, coord in zip("zyx", np.unravel_index(voxels, labels.shape)):
            columns[f"{side}_{axis}"] = coord.astype(np.int64)
    columns["pre"] = pre
    columns["post"] = flat[post_voxel].astype(np.int64)
    columns["nt"] = neurons["nt"].reindex(pre).to_numpy(dtype=str)
    # Detector-like confidences: mostly high, never at or below chance.
    confidence = 0.5 + 0.5 * rng.beta(4.0, 1.5, len(pre))
    columns["confidence"] = np.clip(confidence, np.nextafter(0.5, 1.0), 1.0)
    table = pd.DataFrame(columns)
    order = ["pre", "post", "pre_z", "pre_y", "pre_x"]
    return table.sort_values(order, kind="stable").reset_index(drop=True)


def edges_from_synapses(synapses: pd.DataFrame, neurons: pd.DataFrame) -> pd.DataFrame:
    """Edge table (pre, post, syn_count, nt, sign) of a synapse table."""
    counts = synapses.groupby(["pre", "post"], sort=True).size()
    edges = counts.rename("syn_count").reset_index()
    edges = edges.astype({"pre": "int64", "post": "int64", "syn_count": "int64"})
    nt = neurons["nt"].reindex(edges["pre"]).to_numpy(dtype=str)
    edges["nt"] = pd.Series(nt, dtype=neurons["nt"].dtype)
    edges["sign"] = np.array([NT_SIGN[t] for t in nt], dtype=np.int8)
    return edges


def _sigma_voxels(physical_sigma, spacing):
    """Per-axis gaussian sigma in voxels for a sigma in in-plane voxel units."""
    return tuple(physical_sigma * float(spacing[1:].min()) / spacing)


def _unit_std(field_):
    # The std of a strided sample is plenty to normalise a stationary noise field.
    return field_ / max(float(field_[::3, ::3, ::3].std()), 1e-12)


def _render_em(rng, labels, synapses, spacing, noise):
    """uint8 FIB-SEM-like rendering of the label volume."""
    inside = labels > 0
    # Cells differ a little in how densely they stain; the extracellular space is greyer.
    shade = np.r_[0.48, rng.normal(0.76, 0.03, int(labels.max()))].astype(np.float32)
    em = shade[labels]
    grain = rng.standard_normal(labels.shape, dtype=np.float32)
    fine = _unit_std(gaussian_filter(grain, _sigma_voxels(1.0, spacing), truncate=3.0))
    coarse = _unit_std(gaussian_filter(grain, _sigma_voxels(3.0, spacing), truncate=3.0))
    del grain
    em += 0.04 * fine
    em[inside & (fine > 2.0)] = 0.34  # vesicle-like dots
    # Mitochondria-like blobs: a dark rim (a thin band of the same smooth field, so no
    # morphology pass is needed) around a darker, textured matrix.
    mito = inside & (coarse > 1.7)
    em[mito] = 0.46 + 0.08 * fine[mito]
    em[mito & (coarse < 1.85)] = 0.26
    del coarse, mito
    _paint_synapses(em, fine, labels, synapses, spacing)
    membrane = contacts.boundary_strength(labels, spacing)
    em -= membrane * (em - np.float32(0.16))
    del membrane
    gaussian_filter(em, _sigma_voxels(0.7, spacing), output=em)
    if noise > 0:
        em += (0.05 * noise) * rng.standard_normal(labels.shape, dtype=np.float32)
        # FIB-SEM slices differ slightly in brightness as the beam and detector drift.
        em += (0.012 * noise) * rng.standard_normal((labels.shape[0], 1, 1)).astype(np.float32)
    np.clip(em * 255.0, 0, 255, out=em)
    return np.rint(em).astype(np.uint8)


def _paint_synapses(em, fine, labels, synapses, spacing):
    """A dark postsynaptic density and a presynaptic vesicle cloud at every synapse."""
    for side, radius, level, texture in (("post", 1.5, 0.24, None), ("pre", 2.5, 0.34, 1.0)):
        if synapses.empty:
            return
        offsets = geometry.ball_offsets(radius * float(spacing[1:].min()), spacing)
        centre = synapses[[f"{side}_z", f"{side}_y", f"{side}_x"]].to_numpy()
        voxels = (centre[:, None, :] + offsets[None]).reshape(-1, 3)
        owner = np.repeat(synapses[side].to_numpy(), len(offsets))
        ok = np.all((voxels >= 0) & (voxels < labels.shape), axis=1)
        voxels, owner = voxels[ok], owner[ok]
        where = tuple(voxels.T)
        ok = labels[where] == owner  # stay inside the synapse's own neuron
        if texture is not None:
            ok &= fine[where] > texture
        em[tuple(voxels[ok].T)] = level


# Allowed ranges of the numeric arguments, in interval notation.
_RANGES = {
    "anisotropy": "(0, inf)", "expression_p": "(0, 1]", "noise": "[0, inf)",
    "dropout": "[0, 1)", "expansion_factor": "(0, inf)", "synapses_per_contact": "(0, inf)",
    "connection_p": "[0, 1]", "fill_fraction": "(0, 0.95]", "blur": "[0, inf)",
    "round_shift": "[0, inf)",
}


def _is_int(x):
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _is_number(x):
    real = isinstance(x, (int, float, np.integer, np.floating))
    return real and not isinstance(x, (bool, np.bool_)) and bool(np.isfinite(x))


def _in_interval(value, interval):
    lo, hi = (float(bound) for bound in interval[1:-1].split(","))
    above = lo < value if interval[0] == "(" else lo <= value
    below = value < hi if interval[-1] == ")" else value <= hi
    return above and below


def _triple(value, check):
    return (isinstance(value, (tuple, list, np.ndarray)) and len(value) == 3
            and all(check(v) for v in value))


def _validate(args):
    """Raise ValueError naming the bad argument and the fix, before any work is done."""
    n_neurons, shape, seed = args["n_neurons"], args["shape"], args["seed"]
    checks = [
        (_is_int(n_neurons) and n_neurons >= 1, "n_neurons must be a whole number >= 1"),
        (_is_int(args["n_channels"]) and args["n_channels"] >= 1,
         "n_channels must be a whole number >= 1"),
        (_triple(shape, lambda s: _is_int(s) and s >= 8),
         "shape must be 3 whole numbers (z, y, x), each >= 8 voxels, e.g. (48, 192, 192)"),
        (seed is None or (_is_int(seed) and seed >= 0),
         "seed must be a whole number >= 0, or None for a fresh random one"),
        (_triple(args["voxel_size"], lambda v: _is_number(v) and v > 0),
         "voxel_size must be 3 positive numbers, nm per voxel (z, y, x)"),
        *((_is_number(args[name]) and _in_interval(args[name], interval),
           f"{name} must be a number in {interval}") for name, interval in _RANGES.items()),
        (args["tags_per_round"] is None or (_is_int(args["tags_per_round"])
                                             and args["tags_per_round"] >= 1),
         "tags_per_round must be a whole number >= 1, or None (all tags in one round)"),
        (_is_int(args["fragment_size"]) and args["fragment_size"] >= 1,
         "fragment_size must be a whole number >= 1 (voxels per fragment)"),
        (args["barcode_dtype"] in ("uint16", "float32", np.uint16, np.float32),
         "barcode_dtype must be 'uint16' (half the memory) or 'float32'"),
        (args["workers"] is None or (_is_int(args["workers"]) and args["workers"] >= 1),
         "workers must be a whole number >= 1, or None"),
        (args["progress"] is None or callable(args["progress"]),
         "progress must be a callable(done, total), or None"),
    ]
    for ok, message in checks:
        if not ok:
            name = message.split()[0]
            raise ValueError(f"{message}; got {name}={args[name]!r}.")
    capacity = int(np.prod(shape)) // 64
    if n_neurons > capacity:
        raise ValueError(
            f"{n_neurons} neurons do not fit in a {tuple(shape)} volume (64 voxels per "
            f"neuron); use n_neurons <= {capacity} or a bigger shape."
        )
