"""How good are propagated labels? Spreads each split's labeled images over the unlabeled pool (as
``data.label_propagation`` does before training) and prints the accuracy of the result on the validation images
(added to the graph as unlabeled nodes, so a setting can be chosen by the protocol) and against the pool's hidden
labels (overall and on its most confident half), for several graph spaces.

    python scripts/propagation_accuracy.py                                  # fashion_mnist, splits 0 1 2
    python scripts/propagation_accuracy.py --split-seeds 1 --latent-of logs/alpha_study/s3/grid/1

``--latent-of RUN_DIR...`` adds, for the split each run used, a graph on the posterior means of its VAE branch
(``RUN_DIR/checkpoints/best.ckpt``; a run with alpha < 1), and ``--features-of RUN_DIR...`` graphs on its
encoder's features alone and on them with the PCA (``model.classify_with=graph``'s graph, which extends to the
validation images as the model would classify them). ``--ensemble RUN_DIR...`` scores each run's network (its
head, also for runs tested with the label graph) on the test set alone, the propagated labels extended to the
test images (each test image takes the distributions of its nearest pool images; the graph, fitted without the
test set, does not change) alone, and their product.
Both use the study's PCA (``data.label_propagation`` of ``experiment=alpha_sweep``: 100 dims of blurred pixels),
whatever ``--dims`` says:

    python scripts/propagation_accuracy.py --dims 100 --ensemble logs/alpha_study/s4/grid/*/

The hidden labels are read here only to score the pseudo-labels; training never sees them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate

from ssl_hybrid.label_propagation import WhitenedPCA, extend_labels, propagate_labels, spread_labels
from ssl_hybrid.models.base import load_module
from ssl_hybrid.models.label_graph import LabelGraph
from ssl_hybrid.run_summary import LABELED_INDICES_FILE


def compose_train(*overrides: str):
    with initialize_config_module("ssl_hybrid.conf", version_base="1.3"):
        return compose("train", overrides=list(overrides))


def datamodule(data: str, split_seed: int, labels_per_class: int):
    cfg = compose_train(f"data={data}", f"data.split_seed={split_seed}", f"data.labels_per_class={labels_per_class}")
    return instantiate(cfg.data, _convert_="all")


def study_pca_setting() -> dict[str, object]:
    """``data.label_propagation``'s PCA settings of ``experiment=alpha_sweep``, as the study's runs used them."""
    settings = compose_train("experiment=alpha_sweep").data.label_propagation
    return {"dims": settings.dims, "blur": settings.blur}


def score(spread: torch.Tensor, num_seeds: int, pool_labels: torch.Tensor, val_labels: torch.Tensor) -> str:
    """Accuracy on the validation nodes (the last ones) and on the pool, of a spread over seeds + pool + val."""
    predicted = spread.argmax(dim=1)
    pool = slice(num_seeds, num_seeds + len(pool_labels))
    confident = spread[pool].max(dim=1).values.argsort(descending=True)[: len(pool_labels) // 2]
    val = (predicted[-len(val_labels) :] == val_labels).float().mean().item()
    on_pool = predicted[pool] == pool_labels
    return f"val {val:.4f}  pool {on_pool.float().mean().item():.4f} (most confident half {on_pool[confident].float().mean().item():.4f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="fashion_mnist")
    parser.add_argument("--split-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--labels-per-class", type=int, default=10)
    parser.add_argument("--dims", type=int, nargs="+", default=[50, 100], help="PCA sizes of the pixel graphs (not of --features-of or --ensemble)")
    parser.add_argument("--neighbours", type=int, default=10)
    parser.add_argument("--latent-of", nargs="*", default=[], metavar="RUN_DIR")
    parser.add_argument("--features-of", nargs="*", default=[], metavar="RUN_DIR")
    parser.add_argument("--ensemble", nargs="*", default=[], metavar="RUN_DIR")
    args = parser.parse_args()
    latent_of, features_of = load_runs(parser, args, "--latent-of", "vae"), load_runs(parser, args, "--features-of")
    ensemble = load_runs(parser, args, "--ensemble", "classifier")
    study_setting = study_pca_setting()

    for split_seed in args.split_seeds:
        dm = datamodule(args.data, split_seed, args.labels_per_class)
        train, split = dm.splits.train, dm.label_split
        if len(split.val) == 0:
            parser.error(f"data={args.data} has its own validation split; this script needs validation images from the pool")
        images = torch.cat([train.images[split.labeled], train.images[split.unlabeled], train.images[split.val]])
        seeds, seed_labels = torch.arange(len(split.labeled)), train.labels[split.labeled]
        hidden = (len(seeds), train.labels[split.unlabeled], train.labels[split.val])
        pool = images[: len(seeds) + len(split.unlabeled)]  # the nodes data.label_propagation builds its graph on
        pca = WhitenedPCA.fit(pool, **study_setting) if args.features_of or args.ensemble else None
        for dims, blur in itertools.product(args.dims, (False, True)):
            start = time.perf_counter()
            spread = propagate_labels(images, seeds, seed_labels, dm.num_classes, WhitenedPCA.fit(images, dims, blur), args.neighbours)
            print(f"split {split_seed}  whitened PCA {dims:3d}{' of blurred pixels' if blur else ' of pixels        '}  "
                  f"{score(spread, *hidden)}  {time.perf_counter() - start:.1f} s", flush=True)  # fmt: skip
        for run_dir, module in latent_of[split_seed]:
            with torch.no_grad():
                latent = torch.cat([module.vae.posterior(module.encode(chunk)).chunk(2, dim=1)[0] for chunk in images.split(2048)])
            spread = spread_labels(latent, args.neighbours, seeds, seed_labels, dm.num_classes)
            print(f"split {split_seed}  VAE posterior means of {run_dir}  {score(spread, *hidden)}", flush=True)
        for run_dir, module in features_of[split_seed]:
            with torch.no_grad():
                encoded = torch.cat([module.encode(chunk) for chunk in images.split(2048)])
            spread = spread_labels(encoded, args.neighbours, seeds, seed_labels, dm.num_classes)
            print(f"split {split_seed}  encoder features of {run_dir}  {score(spread, *hidden)}", flush=True)
            graph = LabelGraph()
            graph.fit(pca, args.neighbours, pool, encoded[: len(pool)], seeds, seed_labels, dm.num_classes)
            val_images, val_labels = images[len(pool) :], hidden[2]
            val = (graph(val_images, encoded[len(pool) :]).argmax(dim=1) == val_labels).float().mean().item()
            on_pool = (graph.node_labels[len(seeds) :].argmax(dim=1) == hidden[1]).float().mean().item()
            print(f"split {split_seed}  encoder features and whitened PCA {study_setting['dims']} of blurred pixels "
                  f"(classify_with=graph) of {run_dir}  val {val:.4f}  pool {on_pool:.4f}", flush=True)  # fmt: skip
        if ensemble[split_seed]:
            features = pca(pool)
            spread = spread_labels(features, args.neighbours, seeds, seed_labels, dm.num_classes)
            test = dm.splits.test
            propagated = extend_labels(pca(test.images), features, spread, args.neighbours)
            for run_dir, module in ensemble[split_seed]:
                with torch.no_grad():
                    network = torch.cat([module.classifier(module.encode(chunk)).softmax(dim=1) for chunk in test.images.split(2048)])
                accuracy = {
                    name: (probs.argmax(dim=1) == test.labels).float().mean().item()
                    for name, probs in (("network", network), ("propagated", propagated), ("product", network * propagated))
                }
                print(f"split {split_seed}  {run_dir}  test accuracy: " + "  ".join(f"{k} {v:.4f}" for k, v in accuracy.items()), flush=True)


def load_runs(parser: argparse.ArgumentParser, args: argparse.Namespace, option: str, need: str | None = None) -> dict[int, list]:
    """``(run_dir, module)`` of each run given to ``option``, by the split it trained on. Refuses, before any
    graph is built, a run that did not finish, one trained on other data, label counts or splits than this call
    scores, and one whose module lacks ``need`` (a ``vae`` or ``classifier``)."""
    runs: dict[int, list] = {split_seed: [] for split_seed in args.split_seeds}
    for run_dir in getattr(args, option.removeprefix("--").replace("-", "_")):
        paths = [Path(run_dir) / LABELED_INDICES_FILE, Path(run_dir) / "checkpoints" / "best.ckpt"]
        if missing := [str(path) for path in paths if not path.is_file()]:
            parser.error(f"{option} {run_dir}: no {' or '.join(missing)} (not a finished ssl-hybrid run)")
        split = json.loads(paths[0].read_text())
        if split["dataset"] != args.data or split["labels_per_class"] != args.labels_per_class or split["split_seed"] not in runs:
            parser.error(f"{option} {run_dir}: trained on {split['dataset']}, {split['labels_per_class']} labels per class, "
                         f"split seed {split['split_seed']}; this call scores --data {args.data} --labels-per-class "
                         f"{args.labels_per_class} --split-seeds {' '.join(map(str, args.split_seeds))}")  # fmt: skip
        module = load_module(paths[1])
        if need is not None and getattr(module, need) is None:
            parser.error(f"{option} {run_dir}: a {module.objective} model with alpha {module.hparams.alpha} has no {need} to use")
        runs[split["split_seed"]].append((run_dir, module))
    return runs


if __name__ == "__main__":
    main()
