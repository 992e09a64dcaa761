"""Fit the merge model's default weights (`proofreading_model.DEFAULT_WEIGHTS`) on the
gala FIB-SEM crop, fibsem_small, and print them.

    python benchmarks/fit_queue_weights.py [--data ../shared/data]

Why fibsem_small and never the medulla cube: `bench_proofreading_queue.py` measures the
queue on the FlyEM medulla cube (fibsem_medulla), so that cube is the evaluation set.
Weights fitted on its own pair answers know those answers in advance: the queue then
looks better there than it can on a volume nobody has proofread yet (it did: 85% of the
top 20 merge suggestions right with medulla-fitted weights, 60% with these; 1,080
decisions to halve VI, 1,200 with these, 1,960 with these and no learning; measured before
contact flatness joined the model).
fibsem_small is an independent volume (another crop, another watershed) with its own
ground truth, so weights fitted on it are a fair prior for any new volume.

What is fitted, to match what the queue and `suspects` score:
- pairs: every touching pair of watershed fragments (`contact_table`, min contact 1 as
  `MergeQueue` takes them), boundary strength from the EM image (the benchmark's and
  the widget's source), not from the crop's boundary-probability map;
- answer: "merge" when both fragments' majority ground-truth neurons are the same (the
  benchmark's simulated proofreader); fragments lying only on unlabelled voxels (truth 0)
  have no answer and their pairs are left out;
- model: `merge_features` (mean boundary, enclosure, log10 smaller size, contact
  flatness) into the logistic `merge_probability`, fitted by `fit_weights` with a weak
  gaussian prior at 0
  (precision 1: keeps the fit finite if a feature separates the answers, and owes
  nothing to the old weights).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from napari_wbe.proofreading_contacts import contact_table
from napari_wbe.proofreading_metrics import contingency
from napari_wbe.proofreading_model import fit_weights, merge_features, merge_probability
from napari_wbe.volumes import open_volume

NAMES = ("intercept", "mean boundary", "enclosure", "log10 smaller size", "contact flatness")


def load_small(data: Path) -> dict[str, np.ndarray]:
    folder = data / "fibsem_small"
    return {name: np.asarray(open_volume(folder / file).data)
            for name, file in (("em", "train-image.h5"), ("fragments", "train-ws.lzf.h5"),
                               ("truth", "train-gt.lzf.h5"))}


def pair_answers(em, fragments, truth) -> tuple[np.ndarray, np.ndarray]:
    """(features, accepted) for the touching fragment pairs that have an answer."""
    contacts = contact_table(fragments, image=em)
    table = contingency(fragments, truth)
    table = table[table["truth"] != 0].sort_values("count", ascending=False, kind="stable")
    top = table.drop_duplicates("label")
    body = dict(zip(top["label"].tolist(), top["truth"].tolist()))
    pairs = contacts.pairs
    known = pairs["a"].isin(body.keys()) & pairs["b"].isin(body.keys())
    pairs = pairs[known]
    segments = contacts.segments
    size_a = segments["size"].reindex(pairs["a"]).to_numpy()
    size_b = segments["size"].reindex(pairs["b"]).to_numpy()
    surface = np.where(size_a <= size_b, segments["surface"].reindex(pairs["a"]).to_numpy(),
                       segments["surface"].reindex(pairs["b"]).to_numpy())
    features = merge_features(pairs["boundary_mean"], pairs["contact"], surface, np.minimum(size_a, size_b),
                              pairs["flatness"])
    accepted = np.array([body[a] == body[b] for a, b in zip(pairs["a"].tolist(), pairs["b"].tolist())])
    return features, accepted


def roc_auc(accepted: np.ndarray, score: np.ndarray) -> float:
    """Probability that a random "merge" pair scores above a random "keep apart" one."""
    ranks = rankdata(score)  # ties share their mean rank: they count half
    positive = accepted.sum()
    return float((ranks[accepted].sum() - positive * (positive + 1) / 2) / (positive * (len(score) - positive)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    volume = load_small(args.data)
    features, accepted = pair_answers(volume["em"], volume["fragments"], volume["truth"])
    weights = fit_weights(features, accepted, prior=np.zeros(len(NAMES)), strength=1.0)
    auc = roc_auc(accepted, merge_probability(features, weights))
    print(f"fibsem_small {volume['fragments'].shape}: {len(features)} touching fragment pairs with an answer, "
          f"{accepted.mean():.0%} one neuron; ROC AUC of the fit on them {auc:.3f}")
    for name, value in zip(NAMES, weights):
        print(f"  {name:20s} {value:8.3f}")
    print("DEFAULT_WEIGHTS = np.array([" + ", ".join(f"{w:.2f}" for w in weights) + "])")


if __name__ == "__main__":
    main()
