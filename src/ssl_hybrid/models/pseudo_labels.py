"""Pseudo-labels for the consistency term: the weak view's predicted class, with a per-image weight."""

from __future__ import annotations

import torch
from torch import nn

from ssl_hybrid.settings import check_choice, check_number

CONSISTENCY_MASKS = ("threshold", "soft")
RUNNING_MOMENTUM = 0.99  # of the running class distribution and confidence statistics


def check_pseudo_label_settings(mask: str, threshold: float) -> None:
    """Refuses an unknown mask or a threshold outside [0, 1) (also where the consistency term is off, so that a
    typo in a sweep does not pass unnoticed)."""
    check_choice("model.consistency_mask", mask, CONSISTENCY_MASKS)
    # a softmax reaches a confidence of exactly 1 only by float rounding: a threshold of 1 would mask every image
    check_number("model.consistency_threshold", threshold, at_least=0, below=1)


def align_to_uniform(probs: torch.Tensor, mean_probs: torch.Tensor) -> torch.Tensor:
    """Distribution alignment (Berthelot et al. 2020, ReMixMatch) to a uniform class prior: each prediction is
    divided by the model's running mean prediction ``mean_probs`` and renormalised, so classes the model
    over-predicts on unlabeled images are pseudo-labelled less often."""
    aligned = probs / mean_probs.clamp_min(1e-6)
    return aligned / aligned.sum(dim=1, keepdim=True)


def threshold_weights(confidence: torch.Tensor, threshold: float) -> torch.Tensor:
    """FixMatch's hard mask: 1 where the pseudo-label's probability is at least ``threshold``, else 0."""
    return (confidence >= threshold).float()


def soft_weights(confidence: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """SoftMatch's truncated Gaussian (Chen et al. 2023): weight 1 at or above the running mean confidence,
    exp(-(c - mean)^2 / (2 sigma^2)) below it, with sigma half the running standard deviation (their n_sigma = 2).
    Every pseudo-label counts, the unsure ones less."""
    below = torch.exp(-((confidence - mean) ** 2) / (2 * var.clamp_min(1e-8) / 4))
    return torch.where(confidence < mean, below, torch.ones_like(confidence))


class PseudoLabeler(nn.Module):
    """Turns the weak view's logits into ``(pseudo_labels, weights)``.

    ``mask="threshold"`` is FixMatch's (weight 1 at confidence >= ``threshold``, else 0); ``mask="soft"`` is
    SoftMatch's truncated Gaussian around the running mean confidence, which lets unsure images count a little
    instead of not at all. ``distribution_alignment`` aligns predictions to a uniform class prior first (the
    labeled sets are class-balanced). A ``prior`` (per-image class distributions, e.g. from
    ``data.label_propagation``) multiplies the prediction before that: a product of two experts that err
    differently, the network and the label graph. The running statistics are buffers, so they resume with a
    checkpoint. Their momentum is 0.99, a horizon of about 100 steps, because runs here last hundreds of steps,
    not the papers' million. Under DDP, which broadcasts buffers from rank 0 before each forward by
    default, they follow rank 0's batches.
    """

    def __init__(
        self,
        num_classes: int,
        mask: str = "threshold",
        threshold: float = 0.95,
        distribution_alignment: bool = False,
    ) -> None:
        super().__init__()
        check_pseudo_label_settings(mask, threshold)
        self.mask, self.threshold = mask, threshold
        self.distribution_alignment = distribution_alignment
        self.register_buffer("mean_probs", torch.full((num_classes,), 1.0 / num_classes))
        self.register_buffer("confidence_mean", torch.tensor(1.0 / num_classes))
        self.register_buffer("confidence_var", torch.tensor(1.0))

    def _update(self, buffer: torch.Tensor, value: torch.Tensor) -> None:
        if self.training:
            buffer.lerp_(value, 1.0 - RUNNING_MOMENTUM)

    @torch.no_grad()
    def forward(self, weak_logits: torch.Tensor, prior: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        probs = torch.softmax(weak_logits.float(), dim=1)
        if prior is not None:
            probs = probs * prior
            probs = probs / probs.sum(dim=1, keepdim=True)
        if self.distribution_alignment:
            self._update(self.mean_probs, probs.mean(dim=0))
            probs = align_to_uniform(probs, self.mean_probs)
        confidence, pseudo_labels = probs.max(dim=1)
        if self.mask == "threshold":
            return pseudo_labels, threshold_weights(confidence, self.threshold)
        self._update(self.confidence_mean, confidence.mean())
        self._update(self.confidence_var, confidence.var(correction=0))
        return pseudo_labels, soft_weights(confidence, self.confidence_mean, self.confidence_var)
