from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import accuracy, fit_ready, image_key
from ssl_hybrid.data import SemiSupervisedDataModule
from ssl_hybrid.label_propagation import (
    EDGE_POWER,
    NEIGHBOUR_WEIGHT,
    SPREADING_ITERATIONS,
    WhitenedPCA,
    extend_labels,
    knn_graph,
    propagate_labels,
    spread_labels,
)
from ssl_hybrid.data.labels import split_labels
from ssl_hybrid.run_summary import LABELED_INDICES_FILE, read_summary


def test_labels_spread_along_the_graph_not_by_distance_to_the_nearest_label():
    # two chains of points, each labeled at one end; a chain's far end lies nearer the other chain's label
    chain_a = torch.stack([torch.linspace(0, 10, 40), torch.zeros(40)], dim=1)
    chain_b = torch.stack([torch.linspace(11, 1, 40), torch.full((40,), 1.5)], dim=1)
    points = torch.cat([chain_a, chain_b]) + torch.tensor([0.0, 20.0])  # away from the origin: cosine ~ distance
    labeled, labels = torch.tensor([0, 40]), torch.tensor([0, 1])
    spread = spread_labels(points - points.mean(0) + torch.tensor([100.0, 0.0]), 2, labeled, labels, 2)
    assert torch.allclose(spread.sum(dim=1), torch.ones(80))
    assert (spread[:40].argmax(1) == 0).all() and (spread[40:].argmax(1) == 1).all()


def test_spreading_is_zhou_et_als_iteration_on_the_symmetrised_graph():
    """A dense float64 reference of the docstring's formula on a small random graph."""
    torch.manual_seed(0)
    features = torch.randn(12, 4) + 2.0
    similarities, indices = knn_graph(features, 3)
    labeled, labels = torch.tensor([0, 5, 7]), torch.tensor([0, 1, 1])
    weights = torch.zeros(12, 12, dtype=torch.float64)
    weights[torch.arange(12).repeat_interleave(3), indices.reshape(-1)] = similarities.double().clamp_min(0).reshape(-1) ** EDGE_POWER
    weights = weights + weights.T
    scale = weights.sum(dim=1).rsqrt()
    normalised = scale[:, None] * weights * scale[None, :]
    seeds = torch.zeros(12, 2, dtype=torch.float64)
    seeds[labeled, labels] = 1.0
    spread = seeds
    for _ in range(SPREADING_ITERATIONS):
        spread = NEIGHBOUR_WEIGHT * normalised @ spread + (1 - NEIGHBOUR_WEIGHT) * seeds
    expected = (spread / spread.sum(dim=1, keepdim=True)).float()
    torch.testing.assert_close(spread_labels(features, 3, labeled, labels, 2), expected, rtol=1e-4, atol=1e-6)


def test_a_new_image_takes_its_neighbours_distributions_weighted_as_the_edges_are():
    angle = torch.tensor(0.4)  # the query's; the two nodes, one per class, lie at 0 and 90 degrees
    direction = torch.stack([angle.cos(), angle.sin()])  # its cosine similarity with each node
    extended = extend_labels(direction[None], torch.eye(2), torch.eye(2), neighbours=2)
    votes = direction**EDGE_POWER
    torch.testing.assert_close(extended[0], votes / votes.sum())


@pytest.mark.parametrize("blur", [False, True])
def test_whitened_components_are_uncorrelated_with_unit_variance(digits, blur):
    scores = WhitenedPCA.fit(digits.train.images, 10, blur=blur)(digits.train.images)
    assert scores.shape == (len(digits.train.images), 10)
    assert torch.allclose(scores.mean(dim=0), torch.zeros(10), atol=1e-4)  # the images were centred
    assert torch.allclose(torch.cov(scores.T), torch.eye(10), atol=0.05)


def test_more_components_than_pixels_are_refused(digits):
    with pytest.raises(ValueError, match=r"data.label_propagation.dims must lie in \[1, 54\] for \(1347, 1, 8, 8\) images, got 100"):
        WhitenedPCA.fit(digits.train.images, 100)


def test_knn_graph_never_links_an_image_to_itself_and_refuses_bad_k():
    features = torch.randn(50, 8)
    _, indices = knn_graph(features, 5, chunk=16)
    assert not (indices == torch.arange(50)[:, None]).any()
    with pytest.raises(ValueError, match="neighbours"):
        knn_graph(features, 50)


def nearest_labeled_image_accuracy(images, labels, labeled_images, labeled_labels) -> float:
    """The baseline: each image takes the label of its nearest labeled image in pixel space."""
    distances = torch.cdist(images.flatten(1).float(), labeled_images.flatten(1).float())
    return (labeled_labels[distances.argmin(1)] == labels).float().mean().item()


@pytest.mark.parametrize("split_seed", [0, 1])
def test_propagation_on_real_digits_beats_the_nearest_labeled_image(digits, split_seed):
    images, labels = digits.train.images, digits.train.labels
    split = split_labels(labels, labels_per_class=3, val_per_class=0, split_seed=split_seed)
    spread = propagate_labels(images, split.labeled, labels[split.labeled], 10, WhitenedPCA.fit(images, 30), neighbours=10)
    propagated_acc = accuracy(spread, labels)
    nearest_acc = nearest_labeled_image_accuracy(images, labels, images[split.labeled], labels[split.labeled])
    assert propagated_acc > nearest_acc + 0.05, (propagated_acc, nearest_acc)


def test_unlabeled_batches_carry_their_images_propagated_labels():
    dm = SemiSupervisedDataModule(
        "digits", labels_per_class=5, val_per_class=5, batch_size=8, unlabeled_ratio=2,
        label_propagation={"dims": 20, "neighbours": 10, "blur": False},
    )  # fmt: skip
    fit_ready(dm)
    pool = dm.splits.train.images[dm.label_split.unlabeled]
    prior_of = {image_key(image): p for image, p in zip(pool, dm.propagated_labels)}
    batch, *_ = next(iter(dm.train_dataloader()))
    images, priors = batch["unlabeled"]
    for image, prior in zip(images, priors):
        assert torch.equal(prior_of[image_key(image)], prior)
    batch = dm.on_after_batch_transfer(batch, 0)
    assert batch["unlabeled"].shape == (16, 1, 8, 8) and torch.equal(batch["unlabeled_prior"], priors)
    # the labeled images are in the pool too: their own label dominates their prior
    labeled_images = dm.splits.train.images[dm.label_split.labeled]
    labeled_labels = dm.splits.train.labels[dm.label_split.labeled]
    for image, label in zip(labeled_images, labeled_labels):
        assert prior_of[image_key(image)].argmax().item() == label.item()


def test_propagated_labels_extend_to_unseen_digits(digits):
    train, test = digits.train, digits.test
    split = split_labels(train.labels, labels_per_class=3, val_per_class=0, split_seed=0)
    pca = WhitenedPCA.fit(train.images, 30)
    features = pca(train.images)
    spread = spread_labels(features, 10, split.labeled, train.labels[split.labeled], 10)
    extended = extend_labels(pca(test.images), features, spread, 10)
    assert extended.shape == (len(test.labels), 10) and torch.allclose(extended.sum(dim=1), torch.ones(len(test.labels)))
    extended_acc = accuracy(extended, test.labels)
    nearest_acc = nearest_labeled_image_accuracy(test.images, test.labels, train.images[split.labeled], train.labels[split.labeled])
    assert extended_acc > nearest_acc + 0.05, (extended_acc, nearest_acc)


def run_propagation_script(*args: str) -> subprocess.CompletedProcess:
    script = Path(__file__).resolve().parents[1] / "scripts" / "propagation_accuracy.py"
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300)


def sweep_jobs_by_alpha_and_split(sweep: Path) -> dict[tuple[float, int], str]:
    return {
        (read_summary(job)["alpha"], json.loads((job / LABELED_INDICES_FILE).read_text())["split_seed"]): str(job)
        for job in sweep.iterdir()
        if job.name.isdigit()
    }


def test_the_propagation_script_scores_each_graph_space_on_a_real_split(digits_multirun):
    """scripts/propagation_accuracy.py, whose figures the README cites, on digits: pixel graphs and the graph on
    a trained run's VAE posterior means."""
    run = sweep_jobs_by_alpha_and_split(digits_multirun)[0.9, 0]
    result = run_propagation_script("--data", "digits", "--split-seeds", "0", "--dims", "10", "--latent-of", run)
    assert result.returncode == 0, result.stderr
    spaces = ["whitened PCA  10 of pixels", "whitened PCA  10 of blurred pixels", f"VAE posterior means of {run}"]
    scores = re.findall(r"split 0  (whitened PCA .+? pixels|VAE posterior means of \S+) +val (\S+)  pool (\S+)", result.stdout)
    assert [space.rstrip() for space, *_ in scores] == spaces, result.stdout
    *pixel_graphs, latent_graph = scores
    assert all(float(val) > 0.5 and float(pool) > 0.5 for _, val, pool in pixel_graphs)  # chance is 0.1
    assert float(latent_graph[1]) > 0.3 and float(latent_graph[2]) > 0.3  # a VAE trained for 10 steps


def test_the_propagation_script_refuses_a_run_it_cannot_use_before_any_graph(digits_multirun, tmp_path):
    jobs = sweep_jobs_by_alpha_and_split(digits_multirun)
    refusals = [
        (["--latent-of", jobs[1.0, 0]], "a blend model with alpha 1.0 has no vae"),
        (["--ensemble", jobs[0.9, 1]], "split seed 1; this call scores --data digits --labels-per-class 10 --split-seeds 0"),
        (["--features-of", str(tmp_path)], "(not a finished ssl-hybrid run)"),
    ]
    for args, message in refusals:
        result = run_propagation_script("--data", "digits", "--split-seeds", "0", "--dims", "10", *args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert "whitened PCA" not in result.stdout
