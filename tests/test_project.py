"""Project folders: round trip, reuse of stored volumes, atomic saves, versions."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from napari_wbe import project as project_module
from napari_wbe.connectome import Connectome
from napari_wbe.project import (
    Project,
    ProjectError,
    open_project,
    project_from_layer_data,
    project_layer_data,
    save_project,
)


@pytest.fixture
def session(em_stack, label_stack, tmp_path) -> Project:
    log = tmp_path / "edits.jsonl"
    log.write_text('{"id": 1, "kind": "merge", "labels": [7, 12]}\n')
    neurons = pd.DataFrame({"nt": ["ACh", "GABA"], "proofread": [True, False]},
                           index=pd.Index([7, 12], name="neuron_id"))
    synapses = pd.DataFrame({"pre_z": [3], "pre_y": [35], "pre_x": [45], "post_z": [3], "post_y": [36],
                             "post_x": [45], "pre": [7], "post": [12], "nt": ["ACh"]})
    edges = pd.DataFrame({"pre": [7], "post": [12], "syn_count": [1], "nt": ["ACh"], "sign": [1]})
    return Project(images={"em": em_stack}, labels={"neurons": label_stack}, features={"neurons": neurons},
                   tables={"synapses": synapses, "edges": edges}, edit_logs={"neurons": str(log)},
                   voxel_size=(40, 8, 8), metadata={"species": "phantom"})


def test_round_trip_restores_everything(session, tmp_path, em_stack, label_stack):
    path = save_project(session, tmp_path / "brain.wbe")
    back = open_project(path)
    np.testing.assert_array_equal(back.images["em"].levels[0].compute(), em_stack)
    np.testing.assert_array_equal(back.labels["neurons"].levels[0].compute(), label_stack)
    assert back.labels["neurons"].kind == "labels" and back.labels["neurons"].voxel_size == (40.0, 8.0, 8.0)
    pd.testing.assert_frame_equal(back.features["neurons"], session.features["neurons"])
    pd.testing.assert_frame_equal(back.tables["synapses"], session.tables["synapses"])
    assert open(back.edit_logs["neurons"]).read() == open(session.edit_logs["neurons"]).read()
    assert back.metadata == {"species": "phantom"}


def test_layers_of_a_project_carry_features_connectome_and_log(session, tmp_path):
    layers = project_layer_data(open_project(save_project(session, tmp_path / "b.wbe")))
    by_name = {kwargs["name"]: (data, kwargs, kind) for data, kwargs, kind in layers}
    assert [by_name[n][2] for n in ("em", "neurons", "synapses")] == ["image", "labels", "points"]
    labels_kwargs = by_name["neurons"][1]
    assert list(labels_kwargs["features"]["index"]) == [7, 12]  # napari's label -> row column
    wbe = labels_kwargs["metadata"]["napari_wbe"]
    assert isinstance(wbe["connectome"], Connectome) and len(wbe["connectome"].edges) == 1
    assert wbe["edit_log"].endswith(".jsonl")
    assert labels_kwargs["scale"] == (40.0, 8.0, 8.0)


def test_layers_back_to_a_project(session, tmp_path):
    layers = project_layer_data(open_project(save_project(session, tmp_path / "c.wbe")))
    again = project_from_layer_data(layers)
    assert set(again.images) == {"em"} and set(again.labels) == {"neurons"}
    pd.testing.assert_frame_equal(again.features["neurons"], session.features["neurons"], check_dtype=False)
    assert set(again.tables) == {"synapses", "edges"}


def test_resave_reuses_stored_volumes_and_cleans_old_revisions(session, tmp_path):
    path = save_project(session, tmp_path / "d.wbe")
    first = json.loads(open(os.path.join(path, "project.json")).read())
    reopened = open_project(path)
    reopened.features["neurons"]["proofread"] = True
    save_project(reopened, path)
    second = json.loads(open(os.path.join(path, "project.json")).read())
    assert second["images"]["em"]["path"] == first["images"]["em"]["path"]  # not copied again
    assert second["features"]["neurons"] != first["features"]["neurons"]
    assert sorted(os.listdir(os.path.join(path, "tables"))) == sorted(
        os.path.basename(p) for p in (second["features"]["neurons"], second["tables"]["synapses"],
                                      second["tables"]["edges"]))
    assert open_project(path).features["neurons"]["proofread"].all()


def test_crash_mid_save_leaves_previous_version_readable(session, tmp_path, monkeypatch):
    path = save_project(session, tmp_path / "e.wbe")
    session.features["neurons"]["proofread"] = True

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(project_module, "_write_manifest", crash)
    with pytest.raises(OSError, match="disk full"):
        save_project(session, path)
    monkeypatch.undo()
    back = open_project(path)
    assert not back.features["neurons"]["proofread"].all()  # the old version, intact
    np.testing.assert_array_equal(back.labels["neurons"].levels[0].compute(), session.labels["neurons"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.labels.update(neurons=np.zeros((4, 8, 8), np.float32)), "must be integers"),
        (lambda p: p.features.update(other=pd.DataFrame()), "belongs to no labels"),
        (lambda p: p.tables.update(edges=[1, 2]), "must be a pandas DataFrame"),
        (lambda p: p.images.update({"a/b": np.zeros((4, 8, 8))}), "names a file"),
        (lambda p: p.edit_logs.update(neurons="/nonexistent.jsonl"), "does not exist"),
    ],
)
def test_bad_projects_are_refused_before_writing(session, tmp_path, change, message):
    change(session)
    with pytest.raises(ProjectError, match=message):
        save_project(session, tmp_path / "f.wbe")
    assert not (tmp_path / "f.wbe").exists()


def test_refuses_to_write_into_a_foreign_folder(session, tmp_path):
    (tmp_path / "thesis").mkdir()
    (tmp_path / "thesis" / "chapter1.tex").write_text("precious")
    with pytest.raises(ProjectError, match="not a napari-wbe project"):
        save_project(session, tmp_path / "thesis")
    assert os.listdir(tmp_path / "thesis") == ["chapter1.tex"]


def test_newer_project_format_says_upgrade(session, tmp_path):
    path = save_project(session, tmp_path / "g.wbe")
    manifest = json.loads(open(os.path.join(path, "project.json")).read())
    manifest["version"] = 99
    open(os.path.join(path, "project.json"), "w").write(json.dumps(manifest))
    with pytest.raises(ProjectError, match="newer napari-wbe.*Upgrade"):
        open_project(path)


def test_display_layers_save_as_images_and_older_display_kinds_still_open(session, tmp_path, em_stack):
    confidence = (em_stack / 255.0).astype(np.float32)
    layers = [(confidence, {"name": "barcode confidence", "scale": (40, 8, 8),
                            "metadata": {"napari_wbe": {"kind": "confidence"}}}, "image")]
    project = project_from_layer_data(layers)
    assert project.images["barcode confidence"].kind == "em"  # an intensity image, saved as such
    path = save_project(session, tmp_path / "h.wbe")
    manifest = json.loads(open(os.path.join(path, "project.json")).read())
    manifest["images"]["em"]["kind"] = "confidence"  # what a save before this fix wrote
    open(os.path.join(path, "project.json"), "w").write(json.dumps(manifest))
    np.testing.assert_array_equal(open_project(path).images["em"].levels[0].compute(), em_stack)
