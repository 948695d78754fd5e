"""The hybrid objectives as plain tensor functions: the terms the LightningModules blend, and the blend.

Both objectives are negative log-likelihoods in nats per dimension: cross-entropy is -log p(y | x) for one label
dimension, and the negative ELBO bounds -log p(x) over the C*H*W pixel dimensions. In those units the blending
weight alpha means the same on 8x8 digits and on 96x96 STL-10 (Bishop & Lasserre 2007 blend the two
log-likelihoods the same way).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per row, in nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def nelbo_per_dim(nll: torch.Tensor, kl: torch.Tensor, num_dims: int, kl_weight: float = 1.0) -> torch.Tensor:
    """Mean negative ELBO in nats per pixel dimension (``kl_weight`` < 1 only during a KL warm-up)."""
    return (nll + kl_weight * kl).mean() / num_dims


def bits_per_dim(nats_per_dim: torch.Tensor) -> torch.Tensor:
    return nats_per_dim / math.log(2.0)


def m2_unlabeled_nelbo(class_nelbo: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Kingma et al. (2014)'s bound for an unlabeled image, negated: -U(x) = sum_y q(y|x) [-L(x, y)] - H(q(y|x)).

    ``class_nelbo[n, y]`` is -L(x_n, y), the negative labeled ELBO including -log p(y), in nats; ``log_q`` holds
    log q(y | x_n). Returns one value per image, in nats."""
    q = log_q.exp()
    return (q * (class_nelbo + log_q)).sum(dim=1)


def pseudo_label_consistency(
    strong_logits: torch.Tensor, pseudo_labels: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """FixMatch's unlabeled term (Sohn et al. 2020): cross-entropy of the strong view's prediction against the
    weak view's class (``pseudo_labels``), each image weighted by the confidence of its pseudo-label (``weights``
    in [0, 1], see ``ssl_hybrid.models.pseudo_labels``). Read as a model of the unknown label, it is a negative
    log-likelihood in nats per label, like CE. Returns the mean over all unlabeled images."""
    return (F.cross_entropy(strong_logits, pseudo_labels, reduction="none") * weights).mean()


def ramped_alpha(alpha: float, step: int, ramp_steps: int) -> float:
    """The "generative first, then discriminative" schedule: alpha grows linearly from 0 to ``alpha`` over the
    first ``ramp_steps`` steps (``ramp_steps`` = 0: constant ``alpha``)."""
    return alpha if ramp_steps <= 0 else alpha * min(1.0, step / ramp_steps)


def head_input(features: torch.Tensor, alpha: float) -> torch.Tensor:
    """What the classifier head reads of the encoder's features: at alpha = 0 a detached copy, so that the encoder
    learns from the ELBO alone and the head is fit on frozen features (Kingma et al. 2014, M1)."""
    return features.detach() if alpha == 0.0 else features


def blend(ce: torch.Tensor, nelbo: torch.Tensor | None, alpha: float) -> torch.Tensor:
    """``alpha * CE + (1 - alpha) * NELBO``, both in nats per dimension.

    At alpha = 0 the encoder sees only the ELBO; callers then compute ``ce`` on ``head_input``'s detached features
    (M1), and it is added at full weight so the classifier head still learns. ``nelbo`` is None when the
    generative branch is off (alpha = 1).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    if nelbo is None:
        if alpha != 1.0:
            raise ValueError("alpha < 1 needs the negative ELBO")
        return ce
    if alpha == 0.0:
        return nelbo + ce
    return alpha * ce + (1.0 - alpha) * nelbo


def coupling_strength(alpha: float) -> float:
    """1 / sigma^2 = (1 - alpha) / alpha of Bishop & Lasserre's (2007) prior; infinite (tied) at alpha = 0."""
    return float("inf") if alpha == 0.0 else (1.0 - alpha) / alpha


def coupling_penalty(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], alpha: float, scale: float) -> torch.Tensor:
    """The coupled prior's negative log-density: ``scale / (2 sigma^2)`` times the mean squared difference of
    the (discriminative, generative) parameter pairs."""
    squared = sum(((a - b) ** 2).sum() for a, b in pairs)
    count = sum(a.numel() for a, _ in pairs)
    return 0.5 * scale * coupling_strength(alpha) * squared / count
