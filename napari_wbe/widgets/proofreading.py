"""Proofreading dock widget: merge, split, undo, a ranked review queue, live metrics.

Pick the Labels layer and press Start editing (every edit goes to an edit log on disk).
Click segments to merge them; in split mode click seeds (shift-click for the second
part), preview, apply. Ctrl-Z / Ctrl-Shift-Z undo and redo on the labels layer, brush
and fill strokes included. Find suspects fills the review queue; select a row to fly to
it with only its segments shown, then Y accepts and N rejects. All edits are
`napari_wbe.proofreading.Editor` calls; this module only turns clicks into them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from magicgui.widgets import ComboBox, Container, FileEdit, Label, PushButton, RadioButtons, Select
from napari.layers import Image, Labels

from ..layer_data import WBE_KEY
from ..proofreading import EditError, Editor, metrics
from ._frame_table import FrameTable
from ._jobs import JobHost
from ._layers import on_click, viewer_camera
from ._paint_events import painted_voxels
from ._review import ReviewQueue
from ._review_queue import ReviewTable
from ._status import StatusArea

if TYPE_CHECKING:
    import napari

LOOK, MERGE, SPLIT = "look", "merge", "split"
SEEDS, PREVIEW = "split seeds", "split preview"
PART_COLOURS = ("#ff4fd8", "#3cf0ff")
HISTORY_ROWS = 200  # the newest edits listed (the log keeps them all)
IN_MEMORY_LIMIT = 4 << 30  # lazily loaded labels up to this many bytes are loaded to be edited


def default_log_path(layer) -> str:
    """A new log in the user's napari-wbe folder (saving a project copies it in)."""
    folder = Path.home() / ".napari-wbe" / "edit-logs"
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / f"{layer.name.replace(os.sep, '_')}-{time.strftime('%Y%m%d-%H%M%S')}.wbelog")


class ProofreadingWidget(ReviewQueue, JobHost, Container):
    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self._viewer = napari_viewer
        self.editor: Editor | None = None
        self.layer: Labels | None = None
        self.selected: list[int] = []
        self._on_click = on_click(self._clicked)
        self.seeds: list[list] = [[], []]
        self._split_label: int | None = None
        self._full_colormap = None
        self.labels_layer = ComboBox(label="Labels", choices=self._labels_layers)
        self.image_layer = ComboBox(label="EM image", choices=self._image_layers, nullable=True,
                                    tooltip="EM the labels were drawn on: split follows its membranes, and the review "
                                    "queue ranks by them and learns what they look like from your answers")
        self.boundary_layer = ComboBox(label="Boundary map", choices=self._image_layers, nullable=True, value=None,
                                       tooltip="Optional: membrane probability (1 = membrane), e.g. from ilastik or "
                                       "a network; the review queue reads membranes from it instead of the EM")
        self.barcode_layers = Select(label="Barcode channels", choices=self._channel_layers, value=[],
                                     tooltip="Optional, expansion microscopy: the tag channels on the labels' grid "
                                     "(one 3-D layer per tag, or one 4-D layer, channels first); the review queue "
                                     "then flags segments carrying two codes and weighs merges by their codes")
        self.barcode_layers.native.setMaximumHeight(80)
        self.truth_layer = ComboBox(label="Ground truth", choices=self._labels_layers, nullable=True, value=None,
                                    tooltip="Optional: metrics against it after every edit")
        self.log_file = FileEdit(label="Edit log", mode="w", filter="*.wbelog", value="",
                                 tooltip="Empty: a new log beside the project or in ~/.napari-wbe; "
                                 "an existing log is resumed (replayed onto the labels)")
        self.start_button = PushButton(text="Start editing")
        self.mode = RadioButtons(label="Click to", choices=[LOOK, MERGE, SPLIT], value=LOOK, orientation="horizontal")
        self.selection = Label(label="Selected", value="–")
        self.merge_button = PushButton(text="Merge selected")
        self.preview_button = PushButton(text="Preview split")
        self.split_button = PushButton(text="Apply split")
        self.clear_button = PushButton(text="Clear")
        self.undo_button = PushButton(text="Undo (Ctrl-Z)")
        self.redo_button = PushButton(text="Redo (Ctrl-Shift-Z)")
        self.proofread_button = PushButton(text="Mark selected as proofread")
        self.history = Label(label="History", value="–")
        self.history_table = FrameTable(self._show_edit)  # newest first; a row flies to its segments
        self.history_table.setMinimumHeight(100)
        self.find_button = PushButton(text="Find suspects")
        self.queue = ReviewTable(self._focus)
        self.accept_button = PushButton(text="Accept (Y)")
        self.reject_button = PushButton(text="Reject (N)")
        self.show_all_button = PushButton(text="Show all")
        self.metrics = Label(label="Metrics", value="–")
        self.cancel = PushButton(text="Cancel", enabled=False)
        self.status = StatusArea()
        row = lambda *widgets: Container(widgets=widgets, layout="horizontal", labels=False)
        self.extend([self.labels_layer, self.image_layer, self.boundary_layer, self.barcode_layers, self.truth_layer, self.log_file, self.start_button,
                     self.mode, self.selection, row(self.merge_button, self.clear_button),
                     row(self.preview_button, self.split_button), row(self.undo_button, self.redo_button),
                     self.proofread_button, self.history, self.find_button,
                     row(self.accept_button, self.reject_button, self.show_all_button), self.metrics, self.cancel,
                     self.status])
        self.native.layout().insertWidget(self.index(self.find_button) + 1, self.queue)
        self.native.layout().insertWidget(self.index(self.history) + 1, self.history_table)
        for button, slot in ((self.start_button, self.start), (self.merge_button, self.merge_selected),
                             (self.preview_button, self.preview_split), (self.split_button, self.apply_split),
                             (self.clear_button, self.clear), (self.undo_button, self.undo),
                             (self.redo_button, self.redo), (self.proofread_button, self.mark_proofread),
                             (self.find_button, self.find_suspects), (self.accept_button, self.accept),
                             (self.reject_button, self.reject), (self.show_all_button, self.show_all),
                             (self.cancel, self.cancel_job)):
            button.changed.connect(slot)
        self._set_editing(False)

    # --- choices ----------------------------------------------------------------------
    def _labels_layers(self, *_) -> list:
        return [layer for layer in self._viewer.layers if isinstance(layer, Labels) and layer.name != PREVIEW]

    def _image_layers(self, *_) -> list:
        return [layer for layer in self._viewer.layers if isinstance(layer, Image) and layer.ndim == 3]

    def _channel_layers(self, *_) -> list:
        return [layer for layer in self._viewer.layers if isinstance(layer, Image) and layer.ndim in (3, 4)
                and not layer.rgb]

    def busy_buttons(self) -> list:
        return [self.find_button, self.start_button]

    def _set_editing(self, on: bool) -> None:
        for button in (self.merge_button, self.preview_button, self.split_button, self.undo_button,
                       self.redo_button, self.proofread_button, self.find_button, self.accept_button,
                       self.reject_button):
            button.enabled = on

    # --- starting ---------------------------------------------------------------------
    def start(self) -> None:
        layer = self.labels_layer.value
        if layer is None:
            self.status.done("Add or open a Labels layer first.", error=True)
            return
        self.stop()
        try:
            if not isinstance(layer.data, np.ndarray) and not hasattr(layer.data, "store"):
                nbytes = int(np.prod(layer.data.shape)) * np.dtype(layer.data.dtype).itemsize
                if nbytes > IN_MEMORY_LIMIT:
                    raise EditError(f"{layer.name} is {nbytes / 2**30:.1f} GiB and read-only (lazy); open it as a "
                                    "writable zarr array to edit it in place.")
                layer.data = np.asarray(layer.data)
            image = self.image_layer.value
            image = None if image is None or image.data.shape != layer.data.shape else image.data
            path = os.fspath(self.log_file.value) if str(self.log_file.value) not in ("", ".") else ""
            if path and os.path.exists(path):
                self.editor = Editor.resume(layer.data, path, image=image)
            else:
                self.editor = Editor(layer.data, image=image, log_path=path or default_log_path(layer))
        except (EditError, ValueError, OSError) as err:
            self.status.done(str(err), error=True)
            return
        self.layer = layer
        layer.metadata.setdefault(WBE_KEY, {})["edit_log"] = self.editor.log.path
        layer.mouse_drag_callbacks.append(self._on_click)
        layer.events.paint.connect(self._on_paint)
        layer.bind_key("Control-Z", lambda _: self.undo(), overwrite=True)
        layer.bind_key("Control-Shift-Z", lambda _: self.redo(), overwrite=True)
        layer.bind_key("y", lambda _: self.accept(), overwrite=True)
        layer.bind_key("n", lambda _: self.reject(), overwrite=True)
        self._set_editing(True)
        self._after_edit(f"Editing {layer.name}; edits are logged to {self.editor.log.path}.")

    def stop(self) -> None:
        """Detach from the layer being edited (its log stays on disk)."""
        if self.layer is None:
            return
        self.show_all()
        self.forget_queue()
        if self._on_click in self.layer.mouse_drag_callbacks:
            self.layer.mouse_drag_callbacks.remove(self._on_click)
        self.layer.events.paint.disconnect(self._on_paint)
        for key in ("Control-Z", "Control-Shift-Z", "y", "n"):
            self.layer.keymap.pop(key, None)
        self.editor.close()
        self.editor, self.layer = None, None
        self._set_editing(False)

    # --- clicks and paint -------------------------------------------------------------
    def _clicked(self, layer, event, label) -> None:
        if self.mode.value == LOOK:
            return
        if self.mode.value == MERGE:
            self.select(int(label or 0))
            return
        voxel = np.round(layer.world_to_data(event.position)).astype(int)
        if event.dims_displayed and len(event.dims_displayed) == 3:
            voxel = first_voxel_on_ray(layer, event, int(label or 0))
            if voxel is None:
                self.status.say("No segment under the cursor.", error=True)
                return
        self.add_seed(voxel, part=1 if "Shift" in event.modifiers else 0)

    def _on_paint(self, event) -> None:
        painted = painted_voxels(event.value)
        if painted is not None and self.editor is not None:
            self.editor.record_paint(*painted)  # writes the stroke now if napari has not yet
            self._after_edit("Painted.")

    # --- merge ------------------------------------------------------------------------
    def select(self, label: int) -> None:
        if label == 0:
            return
        if label in self.selected:
            self.selected.remove(label)
        else:
            self.selected.append(label)
        self.selection.value = ", ".join(map(str, self.selected)) or "–"
        self.layer.selected_label = label

    def merge_selected(self) -> None:
        self.merge_segments(list(self.selected))
        self.clear()

    # --- split ------------------------------------------------------------------------
    def add_seed(self, voxel, part: int) -> None:
        label = int(self.layer.data[tuple(voxel)])
        if label == 0:
            self.status.say("That voxel is background; click on the segment to split.", error=True)
            return
        if self._split_label not in (None, label):
            self.status.say(f"Seeds go on one segment ({self._split_label}); clear to pick another.", error=True)
            return
        self._split_label = label
        self.seeds[part].append([int(v) for v in voxel])
        points = [(p, s) for p in (0, 1) for s in self.seeds[p]]
        data = np.array([s for _, s in points], float)
        colours = [PART_COLOURS[p] for p, _ in points]
        if SEEDS in self._viewer.layers:
            self._viewer.layers[SEEDS].data = data
            self._viewer.layers[SEEDS].face_color = colours
        else:
            self._viewer.add_points(data, name=SEEDS, face_color=colours, size=4, scale=self.layer.scale,
                                    translate=self.layer.translate)
        self.selection.value = f"split {label}: {len(self.seeds[0])} + {len(self.seeds[1])} seeds"

    def preview_split(self) -> None:
        try:
            box, parts = self.editor.preview_split(self._split_label, *self.seeds)
        except (EditError, TypeError) as err:
            self.status.say(str(err) if isinstance(err, EditError) else "Click seeds on a segment first.", error=True)
            return
        offset = np.asarray(self.layer.translate) + np.asarray(box[:3]) * np.asarray(self.layer.scale)
        if PREVIEW in self._viewer.layers:
            self._viewer.layers.remove(PREVIEW)
        self._viewer.add_labels(parts, name=PREVIEW, scale=self.layer.scale, translate=offset, opacity=0.8)
        self.status.say(f"Preview: parts of {', '.join(str((parts == p).sum()) for p in (1, 2))} voxels.")

    def apply_split(self) -> None:
        if self._split_label is None:
            self.status.say("Click seeds on a segment first.", error=True)
            return
        label, seeds = self._split_label, self.seeds
        self._edit(lambda ed: f"Split {label} into {ed.split(label, *seeds)}.")
        self.clear()

    def begin_split(self, label: int) -> None:
        self.clear()
        self.mode.value = SPLIT
        self.status.say(f"Split {label}: click seeds (shift-click for the second part), then Apply split.")

    def clear(self) -> None:
        self.selected, self.seeds, self._split_label = [], [[], []], None
        self.selection.value = "–"
        for name in (SEEDS, PREVIEW):
            if name in self._viewer.layers:
                self._viewer.layers.remove(name)

    # --- history ----------------------------------------------------------------------
    def undo(self) -> None:
        record = self.editor.undo() if self.editor else None
        asked_again = self._queue_undone(record) if record else None
        self._after_edit(f"Undid {record['kind']} #{record['id']}." if record else "Nothing to undo.")
        if asked_again:  # an answer taken back: its question is the one to look at again
            self.queue.select_labels(asked_again)

    def redo(self) -> None:
        record = self.editor.redo() if self.editor else None
        answered = self._queue_redone(record) if record else False
        self._after_edit(f"Redid {record['kind']} #{record['id']}." if record else "Nothing to redo.")
        if answered:  # an answer given again: on to the best question, as after answering
            self.queue.select_first()

    def _edit(self, make) -> bool:
        """Make an edit (make(editor) -> message); False if the editor refused it (said why)."""
        try:
            message = make(self.editor)
        except EditError as err:
            self.status.say(str(err), error=True)
            return False
        self._after_edit(message)
        return True

    def _after_edit(self, message: str) -> None:
        if self.layer is not None:
            self.layer.refresh()
        if self.editor is not None:
            done = self.editor.history
            self.history.value = f"{len(done)} edit(s)" if done else "no edits"
            newest = done[::-1][:HISTORY_ROWS]
            self.history_table.set_frame(pd.DataFrame({
                "#": [r["id"] for r in newest], "kind": [r["kind"] for r in newest],
                "labels": [tuple(r.get("labels", ())) for r in newest],
                "time": [time.strftime("%H:%M:%S", time.localtime(r["time"])) for r in newest]}), select_first=False)
            self.undo_button.enabled, self.redo_button.enabled = self.editor.can_undo, self.editor.can_redo
        if self.merge_queue is not None:
            self._rerank()  # the queue's answers and the segments edited by hand are in the rows now
        self.status.say(message)
        self.update_metrics()

    def _show_edit(self, row: pd.Series) -> None:
        """Fly to an edit of the history: the middle of the segments it names, as they are now."""
        boxes = [self.editor.boxes[i] for i in row["labels"] if i in self.editor.boxes] if self.editor else []
        if not boxes:
            self.status.say(f"The segments of edit #{row['#']} are gone (deleted, or merged into another).")
            return
        middle = (np.min([box[:3] for box in boxes], axis=0) + np.max([box[3:] for box in boxes], axis=0)) / 2
        world = self.layer.data_to_world(middle)
        self._viewer.dims.set_point(range(3), world)
        viewer_camera(self._viewer).center = world

    def update_metrics(self) -> None:
        truth = self.truth_layer.value
        if truth is None or self.layer is None or truth is self.layer or truth.data.shape != self.layer.data.shape:
            self.metrics.value = "–"
            return
        m = metrics(self.layer.data, np.asarray(truth.data))
        self.metrics.value = (f"VI split {m['vi_split']:.3f}, merge {m['vi_merge']:.3f}; ARAND {m['arand']:.3f}; "
                              f"false merges {m['false_merges']}, splits {m['false_splits']}")

    def mark_proofread(self) -> None:
        row = self.queue.current()
        ids = self.selected or ([] if row is None else list(row["labels"]))
        if not ids:
            self.status.say("Select segments (merge mode clicks) to mark them proofread.", error=True)
            return
        features = self.layer.features.copy()
        if "index" not in features:
            features["index"] = pd.Series(dtype="int64")
        missing = [i for i in ids if i not in set(features["index"])]
        features = pd.concat([features, pd.DataFrame({"index": missing})], ignore_index=True)
        if "proofread" not in features:
            features["proofread"] = False
        features["proofread"] = features["proofread"].fillna(False).astype(bool) | features["index"].isin(ids)
        self.layer.features = features
        self.status.say(f"Marked {ids} proofread.")


def first_voxel_on_ray(layer, event, label: int):
    """In 3D, the first voxel of `label` along the click's view ray (None if it has none)."""
    start, end = layer.get_ray_intersections(event.position, event.view_direction, event.dims_displayed,
                                             world=True)
    if label == 0 or start is None:
        return None
    steps = int(np.ceil(np.linalg.norm(np.subtract(end, start)))) * 2 + 1
    for point in np.linspace(start, end, steps):
        voxel = np.round(point).astype(int)
        if np.all((voxel >= 0) & (voxel < layer.data.shape)) and layer.data[tuple(voxel)] == label:
            return voxel
    return None
