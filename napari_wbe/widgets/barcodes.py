"""Barcode dock widget: decode ExM tag channels into a labels layer, with a live preview.

Pick the channel layers (one 3-D layer per tag, or one 4-D layer and its channel axis),
press Prepare (levels and codebook, learned or read from a file; the per-channel
histograms show the thresholds), tune the foreground and similarity sliders while the
"barcode preview" layer redecodes the current slice, then Decode volume: the
"barcode labels" layer (features = one row per label) and "barcode confidence".
All of it is `napari_wbe.barcodes.Decoder`; this module only gathers inputs and shows results.
"""

from __future__ import annotations

import inspect
import os
import re
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    FloatSlider,
    Label,
    LineEdit,
    PushButton,
    Select,
    SpinBox,
)
from napari.layers import Image
from qtpy.QtCore import QTimer

from ..barcodes import METHODS, Decoder
from ..layer_data import WBE_KEY, features_for_layer
from ._histograms import ChannelHistograms
from ._jobs import JobHost
from ._status import StatusArea

if TYPE_CHECKING:
    import napari

LEARN, FROM_FILE = "learn from the data", "from a file"
PREVIEW, LABELS, CONFIDENCE = "barcode preview", "barcode labels", "barcode confidence"
DEBOUNCE_MS = 150
# The sliders start where a script's decode() starts.
DEFAULTS = {name: p.default for name, p in inspect.signature(Decoder).parameters.items()}


class BarcodeWidget(JobHost, Container):
    """Channel layers -> Decoder (Prepare) -> slice preview -> whole-volume labels."""

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self._viewer = napari_viewer
        self._decoder: Decoder | None = None
        self._source: dict | None = None  # where the prepared channels sit in the world
        self._shown = None  # (z, foreground, similarity) of the preview on screen
        self.channels = Select(label="Channels", choices=[], tooltip="One 3-D layer per tag (stacked in layer order), "
                               "or one 4-D layer with a channel axis")
        self.channels.native.setMaximumHeight(110)
        self.channel_axis = SpinBox(label="Channel axis", value=0, min=0, max=3, tooltip="For one 4-D layer")
        self.reference = LineEdit(label="Reference ch.", value="", tooltip="Channels re-imaged every round to "
                                  "register rounds, e.g. '0, 9'; empty for none")
        self.rounds = LineEdit(label="Tag rounds", value="", tooltip="With reference channels: the round of each tag "
                               "channel, e.g. '0,0,0,0,1,1,1,1'")
        self.codebook = ComboBox(label="Codebook", choices=[LEARN, FROM_FILE], value=LEARN)
        self.codebook_file = FileEdit(label="Codebook file", mode="r", filter="*.csv *.json", enabled=False,
                                      tooltip="MERlin CSV (name, id, bit1..bitN) or SpaceTx JSON")
        self.method = ComboBox(label="Method", choices=list(METHODS), value="metric")
        self.prepare_button = PushButton(text="Prepare")
        self.codes = Label(label="Codes", value="–")
        self.foreground = FloatSlider(label="Foreground", value=DEFAULTS["foreground_threshold"], min=0.0, max=1.0,
                                      step=0.01, tooltip="Brightest normalised tag a voxel needs "
                                      "(0 = off level, 1 = bright)")
        self.similarity = FloatSlider(label="Min similarity", value=DEFAULTS["min_similarity"], min=0.5, max=1.0,
                                      step=0.01, tooltip="Cosine similarity to its code a voxel needs to be decoded")
        self.min_size = SpinBox(label="Min size", value=DEFAULTS["min_size"], min=0, max=10_000_000,
                                tooltip="Pieces smaller than this (voxels) are dropped")
        self.identity = ComboBox(label="Cells", choices=[("one per code unlikely to be shared", "auto"),
                                                         ("one per connected piece of a code", "connected"),
                                                         ("one per code", "code")], value=DEFAULTS["identity"],
                                 tooltip="'one per code' joins all pieces of a code: right when codes are unique; "
                                         "'unlikely to be shared' does so for codes no other cell is expected to "
                                         "carry, and keeps the pieces of common codes apart")
        self.decode_button = PushButton(text="Decode volume")
        self.cancel = PushButton(text="Cancel", enabled=False)
        self.status = StatusArea()
        self.extend([self.channels, self.channel_axis, self.reference, self.rounds, self.codebook, self.codebook_file,
                     self.method, self.prepare_button, self.codes, self.foreground, self.similarity, self.min_size,
                     self.identity, self.decode_button, self.cancel, self.status])
        self.histograms = ChannelHistograms()
        self.native.layout().insertWidget(self.index(self.codes) + 1, self.histograms)
        self._timer = QTimer(self.native, singleShot=True, interval=DEBOUNCE_MS, timeout=self.update_preview)

        for widget in (self.channels, self.channel_axis, self.reference, self.rounds, self.codebook_file, self.method):
            widget.changed.connect(self._forget_decoder)
        self.codebook.changed.connect(self._codebook_mode)
        self.prepare_button.changed.connect(self.prepare)
        self.decode_button.changed.connect(self.decode)
        self.cancel.changed.connect(self.cancel_job)
        self.foreground.changed.connect(self._sliders_moved)
        self.similarity.changed.connect(self._sliders_moved)
        self._viewer.dims.events.current_step.connect(self._schedule_preview)
        self.native.destroyed.connect(self._disconnect)
        self.reset_choices()

    # --- inputs ------------------------------------------------------------------------
    def _image_layers(self) -> list:
        return [layer for layer in self._viewer.layers
                if isinstance(layer, Image) and not layer.rgb and layer.ndim in (3, 4) and layer.name != CONFIDENCE]

    def reset_choices(self, *_) -> None:
        """Keep the list in step with the viewer (napari calls this when layers change);
        new ExM layers start selected."""
        before, chosen = set(self.channels.choices), set(self.channels.value)
        layers = self._image_layers()
        names = [layer.name for layer in layers]
        new_exm = {layer.name for layer in layers
                   if layer.name not in before and layer.metadata.get(WBE_KEY, {}).get("kind") == "exm"}
        with self.channels.changed.blocked():
            self.channels.choices = names
            self.channels.value = [n for n in names if n in chosen or n in new_exm]
        if set(self.channels.value) != chosen:
            self._forget_decoder()

    def _codebook_mode(self) -> None:
        self.codebook_file.enabled = self.codebook.value == FROM_FILE
        self._forget_decoder()

    def decoder_inputs(self) -> tuple[dict, dict]:
        """Decoder arguments and where the channels sit (scale, translate, names, layer);
        a ValueError names what to fix in the form."""
        chosen = set(self.channels.value)
        layers = [layer for layer in self._image_layers() if layer.name in chosen]
        if not layers:
            raise ValueError("Pick the barcode channels: one 3-D layer per tag, or one 4-D layer.")
        data = [layer.data[0] if layer.multiscale else layer.data for layer in layers]
        spatial = list(range(3))
        if len(layers) == 1 and layers[0].ndim == 4:
            axis = self.channel_axis.value
            image, spatial, names = data[0], [i for i in range(4) if i != axis], None
        elif all(layer.ndim == 3 for layer in layers) and len(layers) > 1:
            image, axis, names = data, None, [layer.name for layer in layers]
        else:
            raise ValueError(f"Pick one 4-D layer or several 3-D layers (one per tag); got "
                             f"{', '.join(f'{lay.name} ({lay.ndim}-D)' for lay in layers)}.")
        reference = _integers(self.reference.value, "Reference ch.")
        rounds = _integers(self.rounds.value, "Tag rounds")
        if reference and not rounds:
            raise ValueError("With reference channels, give 'Tag rounds': the imaging round (0, 1, ...) of each "
                             "tag channel, comma-separated.")
        if self.codebook.value == FROM_FILE:
            path = os.fspath(self.codebook_file.value)
            if not os.path.isfile(path):
                raise ValueError(f"Choose a codebook file (MERlin CSV or SpaceTx JSON); {path!r} is not a file.")
            codebook = path
        else:
            codebook = None
        n = len(data) if names else np.shape(data[0])[axis]
        names = names or [f"ch {i}" for i in range(n)]
        kept = [i for i in range(n) if i not in {r % n for r in reference or ()}]
        first = layers[0]
        source = {"layer": first, "z_axis": spatial[0], "scale": tuple(np.asarray(first.scale)[spatial]),
                  "translate": tuple(np.asarray(first.translate)[spatial]),
                  "names": [names[i] for i in kept],
                  "colors": [_color(layers[i]) for i in kept] if len(layers) > 1 else []}
        args = {"image": image, "channel_axis": axis, "codebook": codebook, "method": self.method.value,
                "reference_channels": reference, "round_of_channel": rounds}
        return args, source

    # --- prepare -----------------------------------------------------------------------
    def _checked_inputs(self):
        try:
            return self.decoder_inputs()
        except ValueError as err:
            self.status.done(str(err), error=True)
            return None, None

    def prepare(self):
        args, source = self._checked_inputs()
        if args is None:
            return None
        options = self._slider_options()
        return self.start_job(lambda report: Decoder(**args, **options, progress=report), "Preparing the decoder",
                              lambda decoder: self._prepared(decoder, source))

    def _prepared(self, decoder: Decoder, source: dict, preview: bool = True) -> None:
        self._decoder, self._source, self._shown = decoder, source, None
        book = decoder.codebook
        learned = "learned" if book.support is not None else "from file"
        self.codes.value = f"{len(book)} codes × {book.n_bits} bits ({learned})"
        counts, edges = decoder.histograms
        self.histograms.set_data(counts, edges, decoder.settings.thresholds, self.foreground.value,
                                 source["names"], source["colors"])
        self.status.done(f"Found {len(book)} codes. Move the sliders to preview the current slice.")
        if preview:
            self.update_preview()

    def _forget_decoder(self) -> None:
        self._decoder = self._source = None
        self.codes.value = "–"
        self.histograms.clear()

    # --- preview -----------------------------------------------------------------------
    def _sliders_moved(self) -> None:
        self.histograms.set_foreground(self.foreground.value)
        self._schedule_preview()

    def _schedule_preview(self, event=None) -> None:
        if self._decoder is not None:
            self._timer.start()

    def current_slice(self) -> int:
        source = self._source
        coords = source["layer"].world_to_data(self._viewer.dims.point)
        n_z = self._decoder.stack.shape[1]
        return int(np.clip(round(float(coords[source["z_axis"]])), 0, n_z - 1))

    def update_preview(self) -> None:
        """Decode the current slice at the slider values into the preview layer."""
        if self._decoder is None or self._source["layer"] not in self._viewer.layers:
            return
        z, fg, sim = self.current_slice(), self.foreground.value, self.similarity.value
        if self._shown == (z, fg, sim):
            return
        codes = self._decoder.with_options(foreground_threshold=fg, min_similarity=sim).preview(z)["code"]
        scale, translate = self._source["scale"], np.array(self._source["translate"], float)
        translate[0] += z * scale[0]  # a one-slice layer sitting at slice z
        if PREVIEW in self._viewer.layers:  # each napari setter redraws: set only what changed
            layer = self._viewer.layers[PREVIEW]
            if not np.allclose(layer.translate, translate):
                layer.translate = translate
            layer.data = codes[None]
            if not layer.visible:
                layer.visible = True
        else:
            self._viewer.add_labels(codes[None], name=PREVIEW, scale=scale, translate=translate, opacity=0.6,
                                    metadata={WBE_KEY: {"kind": "preview"}})
        self._shown = (z, fg, sim)

    # --- decode ------------------------------------------------------------------------
    def _slider_options(self) -> dict:
        return {"foreground_threshold": self.foreground.value, "min_similarity": self.similarity.value,
                "min_size": self.min_size.value, "identity": self.identity.value}

    def decode(self):
        options = self._slider_options()
        decoder, source = self._decoder, self._source
        if decoder is None:
            args, source = self._checked_inputs()
            if args is None:
                return None

        def work(report):
            prepared = decoder if decoder is not None else Decoder(**args, **options, progress=report)
            return prepared, prepared.with_options(**options).run(progress=report)

        return self.start_job(work, "Decoding barcodes", lambda done: self._decoded(*done, source))

    def _decoded(self, decoder: Decoder, result, source: dict) -> None:
        if self._decoder is not decoder:  # prepared within this job
            self._prepared(decoder, source, preview=False)
        placement = {"scale": source["scale"], "translate": source["translate"]}
        meta = {WBE_KEY: {"kind": "labels", "codebook": result.codebook.to_dataframe(),
                          "decode_report": result.report}}
        features = features_for_layer(result.table.set_index("label"))
        _put(self._viewer, "labels", LABELS, result.labels, placement | {"features": features, "metadata": meta,
                                                                         "opacity": 0.5})
        _put(self._viewer, "image", CONFIDENCE, result.confidence,
             placement | {"colormap": "viridis", "contrast_limits": (0.0, 1.0), "visible": False,
                          "metadata": {WBE_KEY: {"kind": "confidence"}}})
        if PREVIEW in self._viewer.layers:
            self._viewer.layers[PREVIEW].visible = False
        self._viewer.layers.selection.active = self._viewer.layers[LABELS]
        report = result.report
        notes = []
        if report.get("found_codes_on_several_separate_cells") is not None:
            notes.append(f"{report['found_codes_on_several_separate_cells']} codes on several separate cells")
        if report.get("codes_joined_across_pieces"):
            notes.append(f"{report['codes_joined_across_pieces']} joined from pieces")
        self.status.done(f"Decoded {len(result.table)} labels from {len(result.codebook)} codes"
                         + (f" ({'; '.join(notes)})." if notes else "."))

    def busy_buttons(self) -> list:
        return [self.prepare_button, self.decode_button]

    def _disconnect(self, *_) -> None:
        self._viewer.dims.events.current_step.disconnect(self._schedule_preview)


def _integers(text: str, field: str) -> list[int] | None:
    parts = [p for p in re.split(r"[,\s]+", text.strip()) if p and p.lower() != "none"]
    try:
        return [int(p) for p in parts] or None
    except ValueError:
        raise ValueError(f"{field}: write whole numbers separated by commas (e.g. '0, 9'), or leave it empty; "
                         f"got {text!r}.") from None


def _color(layer) -> str:
    rgba = np.asarray(layer.colormap.colors)[-1]
    return "#" + "".join(f"{int(255 * v + 0.5):02x}" for v in rgba[:3])


def _put(viewer, kind: str, name: str, data, kwargs: dict):
    """Replace the data of the layer called `name`, or add it."""
    if name in viewer.layers:
        layer = viewer.layers[name]
        layer.data = data
        for key in ("scale", "translate", "metadata", "features"):
            if key in kwargs:
                setattr(layer, key, kwargs[key])
        return layer
    return getattr(viewer, f"add_{kind}")(data, name=name, **kwargs)
