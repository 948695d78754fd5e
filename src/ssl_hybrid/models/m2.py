"""Kingma et al. (2014)'s M2 on the shared encoder: q(y | x) is the classifier head, q(z | x, y) and p(x | y, z)
a class-conditional VAE. Labeled images contribute the labeled ELBO, unlabeled ones the bound with y
marginalised under q(y | x); the classification term is weighted by alpha exactly as in the blend."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ssl_hybrid.models.base import SemiSupervisedModule, split_views
from ssl_hybrid.models.vae import VAEBranch, check_vae_settings
from ssl_hybrid.objectives import blend, head_input, m2_unlabeled_nelbo


class M2Module(SemiSupervisedModule):
    objective = "m2"
    class_conditional = True
    generative_at_alpha_1 = False  # whether alpha = 1 still builds the class-conditional VAE (its classifier is it)

    def __init__(
        self,
        num_classes: int,
        image_shape: Sequence[int],
        alpha: float = 0.9,
        latent_dim: int = 16,
        backbone: dict[str, Any] | None = None,
        likelihood: str = "auto",
        decoder_width: int = 64,
        classify_with: str = "head",
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(num_classes, image_shape, alpha, backbone, likelihood, optimizer, scheduler, classify_with)
        self.save_hyperparameters(logger=False)
        check_vae_settings(self.likelihood_name, latent_dim, decoder_width)
        self.log_prior = -math.log(num_classes)  # p(y) uniform
        if alpha == 1.0 and classify_with == "generative" and not self.generative_at_alpha_1:
            raise ValueError("model.classify_with=generative needs alpha < 1: at alpha = 1 no generative model is trained")
        if alpha < 1.0 or self.generative_at_alpha_1:
            self.vae = VAEBranch(
                self.backbone.num_features, self.image_shape, latent_dim, self.likelihood_name, decoder_width, num_classes
            )

    def labeled_nelbo(self, features: torch.Tensor, images: torch.Tensor, labels: torch.Tensor, at_posterior_mean: bool = False):
        """-L(x, y) per image (nats) and its reconstruction and KL(z) parts."""
        terms = self.vae(features, images, labels, at_posterior_mean)
        return terms.nll + terms.kl - self.log_prior, terms.nll, terms.kl

    def class_nelbo(self, features: torch.Tensor, images: torch.Tensor, at_posterior_mean: bool = False):
        """-L(x, y) for every class y: tensors of shape (N, K) (total, reconstruction, KL(z))."""
        n, k = len(images), self.num_classes
        labels = torch.arange(k, device=images.device).repeat(n)
        features, images = features.repeat_interleave(k, 0), images.repeat_interleave(k, 0)
        total, nll, kl = self.labeled_nelbo(features, images, labels, at_posterior_mean)
        return total.view(n, k), nll.view(n, k), kl.view(n, k)

    def generative_logits(self, features: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        self._require_vae()
        # z at the posterior mean: one sampled z made the class change from call to call, and was less accurate
        return -self.class_nelbo(features, images, at_posterior_mean=True)[0]  # log p(y) + ELBO(x | y)

    def unlabeled_terms(self, features: torch.Tensor, images: torch.Tensor, logits: torch.Tensor | None):
        """-U(x) per image and its parts under q(y | x) = softmax(``logits``): reconstruction; KL(z) +
        KL(q(y|x) || p(y)). ``logits`` None takes the bound's own posterior, q(y | x) proportional to exp L(x, y),
        which makes -U(x) = -log sum_y exp L(x, y), the tightest of these bounds (Gibbs)."""
        total, nll, kl = self.class_nelbo(features, images)
        log_q = F.log_softmax(-total if logits is None else logits, dim=1)
        q = log_q.exp()
        bound = m2_unlabeled_nelbo(total, log_q)
        label_kl = (q * (log_q - self.log_prior)).sum(1)
        return bound, (q * nll).sum(1), (q * kl).sum(1) + label_kl

    @property
    def label_head(self) -> torch.nn.Module:
        """q(y | x) on the generative branch's features: M2's is the classifier head itself."""
        return self.classifier

    def label_logits(self, features: torch.Tensor) -> torch.Tensor | None:
        """The logits of q(y | x) in the unlabeled bound, from the generative branch's features; None: the
        bound's own posterior (see ``unlabeled_terms``)."""
        return self.label_head(features)

    def joint_nelbo(
        self,
        features: torch.Tensor,
        x_l: torch.Tensor,
        y_l: torch.Tensor,
        x_u: torch.Tensor | None,
        labeled_terms: tuple[torch.Tensor, ...] | None = None,
    ) -> torch.Tensor:
        """Mean of -L(x, y) over the labeled and -U(x) over the unlabeled images (the generative branch's features
        in that order), in nats per dimension; logs its parts. ``labeled_terms``: ``labeled_nelbo``'s output for
        the labeled images, when the caller has it already."""
        n_l = len(x_l)
        labeled, nll_l, kl_l = labeled_terms if labeled_terms is not None else self.labeled_nelbo(features[:n_l], x_l, y_l)
        bounds, nlls, kls = [labeled], [nll_l], [kl_l - self.log_prior]
        if x_u is not None:
            # q(y | x) is part of the bound: it takes gradients from it, through the encoder too (at every alpha:
            # only the labeled cross-entropy is kept off the encoder at alpha = 0)
            bound, nll_u, kl_u = self.unlabeled_terms(features[n_l:], x_u, self.label_logits(features[n_l:]))
            bounds, nlls, kls = bounds + [bound], nlls + [nll_u], kls + [kl_u]
        self.log_elbo("train", torch.cat(nlls), torch.cat(kls), len(features))
        return torch.cat(bounds).mean() / self.num_dims

    def eval_elbo_terms(self, features: torch.Tensor, images: torch.Tensor):
        _, nll, kl = self.unlabeled_terms(features, images, self.label_logits(features))
        return nll, kl

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        vae = self._require_vae()
        features = self.encode_generative(images)
        logits = self.label_logits(features)
        if logits is None:
            logits = self.generative_logits(features, images)
        return vae.reconstruct(features, logits.argmax(1))

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        x_l, y_l, x_u, _ = split_views(batch)
        alpha = self.alpha
        generative = self.vae is not None  # alpha < 1
        features = self.encode(torch.cat([x_l, x_u]) if generative and x_u is not None else x_l)
        logits = self.classifier(head_input(features, alpha))
        n_l = len(x_l)
        ce = F.cross_entropy(logits[:n_l], y_l)
        nelbo = self.joint_nelbo(features, x_l, y_l, x_u) if generative else None
        loss = blend(ce, nelbo, alpha)
        self.log_training_step(logits[:n_l], y_l, {"loss": loss, "ce": ce})
        return loss
