"""How good are propagated labels? Spreads each split's labeled images over the unlabeled pool (as
``data.label_propagation`` does before training) and prints the accuracy of the result against the pool's hidden
labels, overall and on the most confident half, for several graph spaces.

    python scripts/propagation_accuracy.py                                  # fashion_mnist, splits 0 1 2
    python scripts/propagation_accuracy.py --split-seeds 1 --latent-of logs/alpha_study/s3/grid/1

``--latent-of RUN_DIR...`` adds, for the split each run used, a graph on the posterior means of its VAE branch
(``RUN_DIR/checkpoints/best.ckpt``; a run with alpha < 1).
The hidden labels are read here only to score the pseudo-labels; training never sees them.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate

from ssl_hybrid.data.label_propagation import knn_graph, propagate_labels, spread_labels
from ssl_hybrid.models.base import load_module


def datamodule(data: str, split_seed: int, labels_per_class: int):
    with initialize_config_module("ssl_hybrid.conf", version_base="1.3"):
        cfg = compose("train", overrides=[f"data={data}", f"data.split_seed={split_seed}", f"data.labels_per_class={labels_per_class}"])
    return instantiate(cfg.data, _convert_="all")


def score(spread: torch.Tensor, labels: torch.Tensor) -> str:
    confidence, predicted = spread.max(dim=1)
    confident = confidence.argsort(descending=True)[: len(labels) // 2]
    overall = (predicted == labels).float().mean().item()
    return f"{overall:.4f}  (most confident half {(predicted[confident] == labels[confident]).float().mean().item():.4f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="fashion_mnist")
    parser.add_argument("--split-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--labels-per-class", type=int, default=10)
    parser.add_argument("--dims", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--neighbours", type=int, default=10)
    parser.add_argument("--latent-of", nargs="*", default=[], metavar="RUN_DIR")
    args = parser.parse_args()

    for split_seed in args.split_seeds:
        dm = datamodule(args.data, split_seed, args.labels_per_class)
        train, split = dm.splits.train, dm.label_split
        images = torch.cat([train.images[split.labeled], train.images[split.unlabeled]])
        seeds, seed_labels = torch.arange(len(split.labeled)), train.labels[split.labeled]
        hidden = train.labels[split.unlabeled]
        n = len(seeds)
        for dims, blur in itertools.product(args.dims, (False, True)):
            spread = propagate_labels(images, seeds, seed_labels, dm.num_classes, dims, args.neighbours, blur)
            print(f"split {split_seed}  whitened PCA {dims:3d}{' of blurred pixels' if blur else ' of pixels        '}  "
                  f"pool accuracy {score(spread[n:], hidden)}", flush=True)  # fmt: skip
        for run_dir in args.latent_of:
            if json.loads((Path(run_dir) / "labeled_indices.json").read_text())["split_seed"] != split_seed:
                continue
            module = load_module(Path(run_dir) / "checkpoints" / "best.ckpt")
            with torch.no_grad():
                latent = torch.cat([module.vae.posterior(module.encode(chunk)).chunk(2, dim=1)[0] for chunk in images.split(2048)])
            spread = spread_labels(*knn_graph(latent, args.neighbours), seeds, seed_labels, dm.num_classes)
            print(f"split {split_seed}  VAE posterior means of {run_dir}  pool accuracy {score(spread[n:], hidden)}", flush=True)


if __name__ == "__main__":
    main()
