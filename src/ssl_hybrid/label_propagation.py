"""Label spreading over the whole training pool in the latent space of a linear-Gaussian image model.

The labels of the few labeled images spread along a k-nearest-neighbour graph (Zhou et al. 2004, "Learning with
local and global consistency"; used to pseudo-label a pool for deep networks by Iscen et al. 2019). The graph is
built on whitened principal components of the pixels: up to a per-axis scale, the posterior mean of probabilistic
PCA (Tipping & Bishop 1999), a generative model of the images with a standard-normal latent. The result is one
class distribution per image, a prior for the pseudo-labels of the consistency term.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def binomial_blur(images: torch.Tensor) -> torch.Tensor:
    """Floats in [0, 1] of uint8 images smoothed by a 5x5 binomial kernel, so that images differing by a pixel's
    shift stay close."""
    taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
    kernel = (taps[:, None] * taps[None, :] / 256.0).expand(images.shape[1], 1, 5, 5)
    return F.conv2d(images.float() / 255.0, kernel, padding=2, groups=images.shape[1])


@dataclass(frozen=True)
class WhitenedPCA:
    """Principal-component scores of uint8 images (blurred first if ``blur``), each scaled to unit variance over
    the images it was fitted on."""

    mean: torch.Tensor
    axes: torch.Tensor
    scale: torch.Tensor
    blur: bool

    @classmethod
    def fit(cls, images: torch.Tensor, dims: int, blur: bool = False) -> WhitenedPCA:
        pixels = _pixels(images, blur)
        if not 0 < dims <= min(pixels.shape) - 10:
            raise ValueError(f"data.label_propagation.dims must lie in [1, {min(pixels.shape) - 10}] for {tuple(images.shape)} images, got {dims}")
        mean = pixels.mean(dim=0)
        # pca_lowrank's random projection, seeded on the CPU generator only: torch.manual_seed would also reseed
        # every CUDA generator, and so the training's augmentation and sampling noise on a GPU
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(0)
            _, singular_values, axes = torch.pca_lowrank(pixels - mean, q=dims + 10, center=False, niter=3)
        return cls(mean, axes[:, :dims], singular_values[:dims] / (len(pixels) - 1) ** 0.5, blur)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return (_pixels(images, self.blur) - self.mean) @ self.axes / self.scale


@dataclass(frozen=True)
class GraphNodes:
    """The images a label graph is built on, the labels of its first ``len(labels)`` nodes, the PCA fitted on
    the images and the graph's number of neighbours."""

    images: torch.Tensor
    labels: torch.Tensor
    pca: WhitenedPCA
    neighbours: int

    @property
    def labeled(self) -> torch.Tensor:
        """Indices of the labeled nodes: the first ``len(labels)``."""
        return torch.arange(len(self.labels))


def _pixels(images: torch.Tensor, blur: bool) -> torch.Tensor:
    return (binomial_blur(images) if blur else images.float() / 255.0).flatten(1)


def nearest(
    queries: torch.Tensor, keys: torch.Tensor, neighbours: int, exclude_self: bool = False, chunk: int = 2048
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarities ``(Q, k)`` and indices ``(Q, k)`` of each query's ``k`` nearest keys (with
    ``exclude_self``, queries are the keys and none is its own neighbour)."""
    unit_keys = F.normalize(keys.float(), dim=1)
    similarities, indices = [], []
    for start, block in zip(range(0, len(queries), chunk), F.normalize(queries.float(), dim=1).split(chunk)):
        block = block @ unit_keys.T
        if exclude_self:
            block[torch.arange(len(block)), torch.arange(start, start + len(block))] = -2.0
        top = block.topk(neighbours, dim=1)
        similarities.append(top.values)
        indices.append(top.indices)
    return torch.cat(similarities), torch.cat(indices)


def knn_graph(features: torch.Tensor, neighbours: int, chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarities ``(N, k)`` and indices ``(N, k)`` of each row's ``k`` nearest other rows."""
    if not 0 < neighbours < len(features):
        raise ValueError(f"need 0 < neighbours < {len(features)} images, got {neighbours}")
    return nearest(features, features, neighbours, exclude_self=True, chunk=chunk)


# Zhou et al. (2004)'s spreading: the weight of the neighbours against a node's own label (their alpha), and the
# power that sharpens cosine similarities into edge weights (the spreading and its extension must share it)
NEIGHBOUR_WEIGHT = 0.99
EDGE_POWER = 3.0
SPREADING_ITERATIONS = 20


def edge_weights(similarities: torch.Tensor) -> torch.Tensor:
    """``similarity ** EDGE_POWER``, negative similarities cut to 0: the graph's edges and the extension's votes."""
    return similarities.clamp_min(0).pow(EDGE_POWER)


def spread_labels(
    features: torch.Tensor,
    neighbours: int,
    labeled: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
) -> torch.Tensor:
    """Zhou et al.'s iteration Z <- a * S Z + (1 - a) * Y (a = ``NEIGHBOUR_WEIGHT``) on the symmetrised
    ``neighbours``-nearest-neighbour graph of ``features`` (``knn_graph``) with edge weights ``edge_weights`` and
    S = D^-1/2 W D^-1/2, from one-hot rows at the ``labeled`` indices. Returns one class distribution per row of
    ``features`` (uniform where no label reaches)."""
    similarities, indices = knn_graph(features, neighbours)
    n, k = indices.shape
    rows = torch.arange(n).repeat_interleave(k)
    weights = edge_weights(similarities).reshape(-1)
    graph = torch.sparse_coo_tensor(torch.stack([rows, indices.reshape(-1)]), weights, (n, n), check_invariants=True)
    graph = (graph + graph.t()).coalesce()
    scale = torch.sparse.sum(graph, dim=1).to_dense().clamp_min(1e-12).rsqrt().unsqueeze(1)
    seeds = torch.zeros(n, num_classes)
    seeds[labeled, labels] = 1.0
    spread = seeds
    for _ in range(SPREADING_ITERATIONS):
        spread = NEIGHBOUR_WEIGHT * scale * torch.sparse.mm(graph, scale * spread) + (1.0 - NEIGHBOUR_WEIGHT) * seeds
    spread = spread.clamp_min(0) + 1e-12
    return spread / spread.sum(dim=1, keepdim=True)


def propagate_labels(
    images: torch.Tensor, labeled: torch.Tensor, labels: torch.Tensor, num_classes: int, pca: WhitenedPCA, neighbours: int
) -> torch.Tensor:
    """Class distributions ``(N, num_classes)`` for every image of ``images`` from the labels of the rows
    ``labeled``, spread over the ``neighbours``-nearest-neighbour graph of their ``pca`` scores."""
    return spread_labels(pca(images), neighbours, labeled, labels, num_classes)


def extend_labels(
    queries: torch.Tensor, graph_features: torch.Tensor, spread: torch.Tensor, neighbours: int = 10
) -> torch.Tensor:
    """Class distributions for new images (``queries``, features in the graph's space) from the spread
    distributions of their ``neighbours`` nearest graph nodes, weighted by ``edge_weights`` as the edges were (the
    inductive extension of Zhou et al.'s spreading). The graph does not change."""
    similarities, indices = nearest(queries, graph_features, neighbours)
    weights = edge_weights(similarities).unsqueeze(2) + 1e-12
    mixed = (weights * spread[indices]).sum(dim=1)
    return mixed / mixed.sum(dim=1, keepdim=True)
