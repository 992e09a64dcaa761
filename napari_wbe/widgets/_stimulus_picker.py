"""The neurons an emulation acts on: stimulated (each with its rate), silenced, read out.

Neurons come from clicks in the viewer (`add`), or by id or cell type typed in a search
box; the table lists them with their type, role and rate, and rows can be removed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from magicgui.widgets import ComboBox, Container, FloatSpinBox, LineEdit, PushButton
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QCompleter

from ._frame_table import FrameTable

STIMULATE, SILENCE, READOUT = "stimulate", "silence", "read out"
ROLE_OF = {STIMULATE: "stimulated", SILENCE: "silenced", READOUT: "readout"}
TYPE_COLUMNS = ("type", "cell_type")
MAX_COMPLETED_IDS = 20_000  # beyond this the completer offers types only (FlyWire has 139k ids)


def neuron_type(neurons: pd.DataFrame) -> pd.Series:
    """The cell type column of a neuron table (connectomes call it `type` or `cell_type`)."""
    for column in TYPE_COLUMNS:
        if column in neurons.columns:
            return neurons[column].astype(str)
    return pd.Series("", index=neurons.index)


class StimulusPicker(Container):
    """Picked neurons: `stimulus()` {id: rate}, `silenced()` and `readout()` id lists."""

    def __init__(self, say, on_change=lambda: None):
        super().__init__(labels=True)
        self._say = say  # status callback: say(message, error=False)
        self._on_change = on_change  # called after every change of the picked neurons
        self.neurons = pd.DataFrame()
        self.picked = pd.DataFrame({"neuron": pd.Series(dtype="int64"), "type": pd.Series(dtype=str),
                                    "role": pd.Series(dtype=str), "rate_hz": pd.Series(dtype=float)})
        self.role = ComboBox(label="A click will", choices=[STIMULATE, SILENCE, READOUT], value=STIMULATE,
                             tooltip="What clicking a neuron in the viewer (or Add) does to it")
        self.rate = FloatSpinBox(label="Rate (Hz)", value=150.0, min=0.0, max=1000.0, step=10.0,
                                 tooltip="Poisson rate for the next neurons stimulated: one rate per group")
        self.search = LineEdit(label="Id or type", value="", tooltip="Neuron ids, names or cell types (every "
                               "neuron of that type), separated by spaces")
        self.add_button = PushButton(text="Add")
        self.remove_button = PushButton(text="Remove selected")
        self.clear_button = PushButton(text="Clear")
        self.table = FrameTable(lambda row: None, sortable=True)
        self.table.setMinimumHeight(110)
        row = lambda *widgets: Container(widgets=widgets, layout="horizontal", labels=False)  # noqa: E731
        self.extend([self.role, self.rate, self.search, row(self.add_button, self.remove_button, self.clear_button)])
        self.native.layout().addWidget(self.table)
        self.add_button.changed.connect(self.add_searched)
        self.search.native.returnPressed.connect(self.add_searched)
        self.remove_button.changed.connect(self.remove_selected)
        self.clear_button.changed.connect(self.clear)

    def set_neurons(self, neurons: pd.DataFrame) -> None:
        """The connectome's neuron table; picks of neurons it lacks are dropped."""
        self.neurons = neurons
        self.picked = self.picked[self.picked["neuron"].isin(neurons.index)]
        self._show()
        words = sorted(set(neuron_type(neurons)) - {""})
        if len(neurons) <= MAX_COMPLETED_IDS:
            words += [str(i) for i in neurons.index]
            words += neurons["name"].astype(str).tolist() if "name" in neurons.columns else []
        completer = QCompleter(words, self.native)  # typing offers matching types and ids
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.search.native.setCompleter(completer)

    def add(self, ids, role: str | None = None) -> None:
        """Give `ids` the current role (a neuron has one role; picking it again changes it)."""
        role = ROLE_OF[role or self.role.value]
        ids = [int(i) for i in np.atleast_1d(ids)]
        missing = [i for i in ids if i not in self.neurons.index]
        if missing:
            self._say(f"Not in the connectome: {', '.join(map(str, missing[:5]))}"
                      f"{'…' if len(missing) > 5 else ''}. Pick neurons of the chosen layer's connectome.", error=True)
            ids = [i for i in ids if i not in missing]
        if not ids:
            return
        rows = pd.DataFrame({"neuron": np.asarray(ids, np.int64), "type": neuron_type(self.neurons).loc[ids].to_numpy(),
                             "role": role, "rate_hz": float(self.rate.value) if role == "stimulated" else np.nan})
        self.picked = pd.concat([self.picked[~self.picked["neuron"].isin(ids)], rows], ignore_index=True)
        self._show()
        self._say(f"{len(ids)} neuron{'s' if len(ids) > 1 else ''} {role}: {', '.join(map(str, ids[:5]))}"
                  f"{'…' if len(ids) > 5 else ''}.")

    def add_searched(self, *_) -> None:
        """Each word an id, a neuron name (e.g. the worm's ASHL) or a cell type (all of it)."""
        words = str(self.search.value).replace(",", " ").split()
        ids, unknown = [], []
        names = {column: self.neurons[column].astype(str).str.lower() for column in ("name",)
                 if column in self.neurons.columns}
        names["type"] = neuron_type(self.neurons).str.lower()
        for word in words:
            if word.lstrip("-").isdigit():
                ids.append(int(word))
                continue
            found = [column.index[column == word.lower()] for column in names.values()]
            found = [match for match in found if len(match)]
            ids += found[0].tolist() if found else []
            unknown += [] if found else [word]
        if ids:
            self.add(ids)
        if unknown:  # said last, so that it stays on screen
            known = sorted(set(neuron_type(self.neurons)) - {""})
            self._say(f"No neuron id, name or cell type {' '.join(unknown)!r}. Types: {', '.join(known[:12])}"
                      f"{'…' if len(known) > 12 else ''}.", error=True)

    def remove_selected(self, *_) -> None:
        row = self.table.current()
        if row is not None:
            self.picked = self.picked[self.picked["neuron"] != row["neuron"]].reset_index(drop=True)
            self._show()

    def clear(self, *_) -> None:
        self.picked = self.picked.iloc[:0]
        self._show()

    def _show(self) -> None:
        self.table.set_frame(self.picked, select_first=False)
        self._on_change()

    def _of_role(self, role: str) -> pd.DataFrame:
        return self.picked[self.picked["role"] == role]

    def stimulus(self) -> dict[int, float]:
        rows = self._of_role("stimulated")
        return dict(zip(rows["neuron"].astype(int), rows["rate_hz"].astype(float)))

    def silenced(self) -> list[int]:
        return self._of_role("silenced")["neuron"].astype(int).tolist()

    def readout(self) -> list[int]:
        return self._of_role("readout")["neuron"].astype(int).tolist()

    def roles(self, neuron_ids: np.ndarray) -> np.ndarray:
        """Each neuron's role ('' when none), in the order of `neuron_ids`."""
        role = pd.Series(self.picked["role"].to_numpy(), index=self.picked["neuron"].to_numpy())
        return role.reindex(neuron_ids).fillna("").to_numpy(str)
