"""npe2 sample data (File > Open Sample > napari-wbe): the mini-brain phantom, and the
C. elegans connectome as points when its data file is installed."""

from __future__ import annotations

from functools import lru_cache

from .layer_data import CHANNEL_COLORMAPS, WBE_KEY, features_for_layer
from .phantom import MiniBrain, mini_brain
from .project import synapse_points


@lru_cache(maxsize=1)
def _phantom() -> MiniBrain:
    # One phantom per session, so the EM, ExM and labels samples line up voxel for voxel.
    return mini_brain()


def _base(mb: MiniBrain, name: str) -> dict:
    return {"name": name, "scale": mb.voxel_size, "metadata": {WBE_KEY: {"kind": "em", "sample": "mini-brain"}}}


def em_sample() -> list[tuple]:
    mb = _phantom()
    return [(mb.em, _base(mb, "mini-brain EM") | {"contrast_limits": [0, 255]}, "image")]


def exm_sample() -> list[tuple]:
    mb = _phantom()
    n = mb.barcode_image.shape[0]
    kwargs = _base(mb, "mini-brain ExM") | {
        "channel_axis": 0,
        "name": mb.channel_names or [f"tag {i}" for i in range(n)],
        "colormap": [CHANNEL_COLORMAPS[i % len(CHANNEL_COLORMAPS)] for i in range(n)],
        "blending": "additive",
        "visible": [i < 3 for i in range(n)],  # 18 additive channels at once are a white blur
    }
    kwargs["metadata"] = {WBE_KEY: {"kind": "exm", "sample": "mini-brain", "expansion_factor": mb.expansion_factor}}
    return [(mb.barcode_image, kwargs, "image")]


def labels_sample() -> list[tuple]:
    mb = _phantom()
    kwargs = _base(mb, "mini-brain labels") | {"features": features_for_layer(mb.neurons), "opacity": 0.5}
    kwargs["metadata"] = {WBE_KEY: {"kind": "labels", "sample": "mini-brain", "connectome": mb.connectome}}
    return [(mb.labels, kwargs, "labels"), synapse_points(mb.synapses, mb.voxel_size, (0.0, 0.0, 0.0))]


def mini_brain_sample() -> list[tuple]:
    """EM, labels and synapses together: the session the `napari-wbe` command opens."""
    return em_sample() + labels_sample()


def celegans_sample() -> list[tuple]:
    """The worm's 448 cells as points in a layout of their wiring (there is no
    volume), carrying the connectome: the connectivity widget explores it like labels."""
    from .connectome import celegans
    from .connectome_layout import graph_layout

    cx = celegans()  # raises with the install hint when c302's data file is missing
    positions = graph_layout(cx)
    kwargs = {"name": "C. elegans neurons", "features": features_for_layer(cx.neurons), "size": 3,
              "face_color": "#8ab4ff", "border_width": 0,
              "metadata": {WBE_KEY: {"kind": "neurons", "sample": "celegans", "connectome": cx}}}
    return [(positions.to_numpy(), kwargs, "points")]
