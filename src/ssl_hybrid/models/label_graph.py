"""The training pool as a label graph that classifies new images (``model.classify_with=graph``).

The labeled and unlabeled images are the nodes of a k-nearest-neighbour graph on two views of each image at once:
the encoder's features and the whitened principal components of ``data.label_propagation`` (probabilistic PCA's
latent space). Each view is scaled to unit length, so an edge's cosine similarity is the mean of the two views'
similarities. The labels spread over that graph (Zhou et al. 2004) and a new image takes the distributions of its
nearest nodes (the graph never sees it). Iscen et al. (2019) spread labels on a network's features; the PCA view
keeps what an encoder trained on 100 labels has not learned (README, "Label propagation").
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ssl_hybrid.label_propagation import WhitenedPCA, extend_labels, spread_labels


def two_view_features(pca: WhitenedPCA, images: torch.Tensor, encoded: torch.Tensor) -> torch.Tensor:
    """Encoder features and principal components of uint8 images, each at unit length, side by side (on
    ``encoded``'s device; the PCA runs on the CPU)."""
    components = pca(images.cpu()).to(encoded.device)
    return torch.cat([F.normalize(encoded.float(), dim=1), F.normalize(components, dim=1)], dim=1)


class LabelGraph(nn.Module):
    """Buffers and extra state, so the fitted graph saves and loads with the checkpoint: the PCA it projects new
    images with, every node's two-view features (half precision, about 20 MB for Fashion-MNIST's pool) and spread
    class distributions. Empty until :meth:`fit`."""

    def __init__(self) -> None:
        super().__init__()
        self.neighbours, self.blur = 0, False
        for name in ("pca_mean", "pca_axes", "pca_scale", "node_features", "node_labels"):
            self.register_buffer(name, torch.empty(0))

    @property
    def fitted(self) -> bool:
        return self.node_labels.numel() > 0

    def reset(self) -> None:
        for name in list(self._buffers):
            setattr(self, name, torch.empty(0, device=self._buffers[name].device))

    def get_extra_state(self) -> dict[str, Any]:
        return {"neighbours": self.neighbours, "blur": self.blur}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.neighbours, self.blur = state["neighbours"], state["blur"]

    @torch.no_grad()
    def fit(
        self,
        pca: WhitenedPCA,
        neighbours: int,
        images: torch.Tensor,
        encoded: torch.Tensor,
        labeled: torch.Tensor,
        labels: torch.Tensor,
        num_classes: int,
    ) -> None:
        """Spreads ``labels`` (of the rows ``labeled``) over ``images`` (uint8; ``encoded``: their encoder
        features) on a ``neighbours``-nearest-neighbour graph."""
        device = encoded.device
        features = two_view_features(pca, images, encoded.cpu())
        spread = spread_labels(features, neighbours, labeled, labels, num_classes)
        self.node_features, self.node_labels = features.half().to(device), spread.half().to(device)
        self.pca_mean, self.pca_axes, self.pca_scale = (t.to(device) for t in (pca.mean, pca.axes, pca.scale))
        self.neighbours, self.blur = neighbours, pca.blur

    def features(self, images: torch.Tensor, encoded: torch.Tensor) -> torch.Tensor:
        """New uint8 images (``encoded``: their encoder features) in the graph's space, projected as its nodes were."""
        pca = WhitenedPCA(self.pca_mean.cpu(), self.pca_axes.cpu(), self.pca_scale.cpu(), self.blur)
        return two_view_features(pca, images, encoded)

    @torch.no_grad()
    def forward(self, images: torch.Tensor, encoded: torch.Tensor) -> torch.Tensor:
        """Class distributions ``(N, C)`` for new uint8 images from their nearest nodes."""
        queries = self.features(images, encoded)
        return extend_labels(queries, self.node_features.float(), self.node_labels.float(), self.neighbours)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # A fitted graph's buffers are sized by the pool; an unfitted module's are empty.
        for name in list(self._buffers):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
