"""Bishop & Lasserre (2007)'s coupled hybrid, deep: a discriminative model (``backbone`` + ``classifier``,
parameters theta) and a generative model of (x, y) of the same architecture (``generative_backbone`` with its
q(y | x) head and a class-conditional VAE, as in M2; parameters theta~), tied by a Gaussian prior
``||theta - theta~||^2 / (2 sigma^2)`` over the matching encoder and head parameters.

alpha maps to sigma through ``sigma^2 = alpha / (1 - alpha)``: alpha = 1 leaves the two independent (sigma =
inf: the discriminative model alone matters, and the generative side is not built), alpha = 0 ties them (sigma =
0: one set of parameters trained on the generative objective, i.e. M2 at alpha = 0). The prior is taken per
parameter (a mean over the coupled parameters) times ``coupling_scale``, so its size does not grow with the
architecture:  loss = CE(theta) + NELBO(theta~) / D + coupling_scale / (2 sigma^2) * mean((theta - theta~)^2).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ssl_hybrid.models.base import split_views
from ssl_hybrid.models.m2 import M2Module
from ssl_hybrid.objectives import coupling_penalty, head_input
from ssl_hybrid.settings import check_number


class CoupledModule(M2Module):
    objective = "coupled"

    def __init__(
        self,
        num_classes: int,
        image_shape: Sequence[int],
        alpha: float = 0.9,
        latent_dim: int = 16,
        backbone: dict[str, Any] | None = None,
        likelihood: str = "auto",
        decoder_width: int = 64,
        coupling_scale: float = 1000.0,
        classify_with: str = "head",
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            num_classes, image_shape, alpha, latent_dim, backbone, likelihood, decoder_width, classify_with, optimizer, scheduler
        )
        self.save_hyperparameters(logger=False)
        check_number("model.coupling_scale", coupling_scale, above=0)  # alpha sets the coupling's strength
        if self.vae is None:  # alpha = 1: independent, the generative model cannot affect the classifier
            self.generative_backbone, self.generative_head = None, None
        elif alpha == 0.0:  # tied: one set of parameters
            self.generative_backbone, self.generative_head = self.backbone, self.classifier
        else:
            # the same architecture, starting at the prior's mode
            self.generative_backbone, self.generative_head = copy.deepcopy(self.backbone), copy.deepcopy(self.classifier)

    def has_separate_generative_network(self) -> bool:
        """0 < alpha < 1: alpha = 1 builds no generative network, alpha = 0 ties it to the discriminative one."""
        return self.generative_backbone is not None and self.generative_backbone is not self.backbone

    def encoders(self) -> list[nn.Module]:
        return [self.backbone, self.generative_backbone] if self.has_separate_generative_network() else [self.backbone]

    def coupled_pairs(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if not self.has_separate_generative_network():
            return []
        discriminative = [*self.backbone.parameters(), *self.classifier.parameters()]
        generative = [*self.generative_backbone.parameters(), *self.generative_head.parameters()]
        return list(zip(discriminative, generative))

    def prior_penalty(self) -> torch.Tensor:
        pairs = self.coupled_pairs()
        if not pairs:
            return torch.zeros((), device=self.device)
        return coupling_penalty(pairs, self.hparams.alpha, self.hparams.coupling_scale)

    def encode_generative(self, images: torch.Tensor, shared_features: torch.Tensor | None = None) -> torch.Tensor:
        """The generative network's own features (the discriminative ``shared_features`` are not its own)."""
        return self.generative_backbone(self.normalize(images))

    @property
    def label_head(self) -> nn.Module:
        return self.generative_head

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        x_l, y_l, x_u, _ = split_views(batch)
        generative_loss, logs = 0.0, {}
        if self.vae is None:
            logits = self.classifier(self.encode(x_l))
        else:
            images = torch.cat([x_l, x_u]) if x_u is not None else x_l
            generative_features = self.encode_generative(images)
            if self.generative_backbone is self.backbone:  # tied (alpha = 0): one encoder pass
                logits = self.classifier(head_input(generative_features[: len(x_l)], self.hparams.alpha))
            else:
                logits = self.classifier(self.encode(x_l))
            penalty = self.prior_penalty()
            generative_loss = self.joint_nelbo(generative_features, x_l, y_l, x_u) + penalty
            logs["coupling"] = penalty
        ce = F.cross_entropy(logits, y_l)
        loss = ce + generative_loss
        self.log_training_step(logits, y_l, {"loss": loss, "ce": ce, **logs})
        return loss
