"""Regenerate the small example files in this folder from the mini-brain phantom.

    python sample_data/make_sample_data.py

Writes (a few MB in all, deterministic):
  mini_brain.wbe/        a project: EM, ExM barcode channels, true labels with the neuron
                         table, synapses and edges (open it with `napari-wbe sample_data/mini_brain.wbe`)
  codebook.csv           the true barcodes, MERlin style: name, id, bit1..bitN
  edges.csv              the true connectome as a plain edge list: source, target, weight, type
"""

from __future__ import annotations

import os
import shutil

import pandas as pd

from napari_wbe.phantom import mini_brain
from napari_wbe.project import Project, save_project
from napari_wbe.volumes import Volume

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPE = (24, 112, 112)
N_NEURONS = 20
N_CHANNELS = 10


def codebook_table(codebook, neuron_ids) -> pd.DataFrame:
    bits = pd.DataFrame(codebook.astype(int), columns=[f"bit{i + 1}" for i in range(codebook.shape[1])])
    return pd.concat([pd.DataFrame({"name": [f"neuron_{i}" for i in neuron_ids], "id": neuron_ids}), bits], axis=1)


def edge_list(edges: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"source": edges["pre"], "target": edges["post"],
                         "weight": edges["syn_count"], "type": "chemical"})


def main() -> None:
    mb = mini_brain(n_neurons=N_NEURONS, shape=SHAPE, n_channels=N_CHANNELS, seed=0)
    exm = Volume(mb.barcode_image, "czyx", mb.voxel_size, "exm", {"expansion_factor": mb.expansion_factor})
    project = Project(
        images={"em": mb.em, "exm": exm},
        labels={"neurons": mb.labels},
        features={"neurons": mb.neurons},
        tables={"synapses": mb.synapses, "edges": mb.connectome.edges},
        voxel_size=mb.voxel_size,
        metadata={"source": "napari_wbe.phantom.mini_brain", "n_neurons": N_NEURONS, "shape": list(SHAPE),
                  "n_channels": N_CHANNELS, "seed": 0},
    )
    target = os.path.join(HERE, "mini_brain.wbe")
    shutil.rmtree(target, ignore_errors=True)
    save_project(project, target)
    codebook_table(mb.codebook, list(mb.neurons.index)).to_csv(os.path.join(HERE, "codebook.csv"), index=False)
    edge_list(mb.connectome.edges).to_csv(os.path.join(HERE, "edges.csv"), index=False)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(HERE) for f in fs)
    print(f"wrote {target}, codebook.csv, edges.csv ({total / 2**20:.1f} MiB in sample_data/)")


if __name__ == "__main__":
    main()
