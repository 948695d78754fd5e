"""The generative branch on the shared encoder features: q(z | h), a decoder p(x | z) and a pixel likelihood."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ssl_hybrid.models.likelihoods import LIKELIHOODS
from ssl_hybrid.objectives import gaussian_kl
from ssl_hybrid.settings import check_number


@dataclass
class ELBOTerms:
    """Per-image terms in nats: ``nll`` = -E_q log p(x | z), ``kl`` = KL(q(z | x) || N(0, I))."""

    nll: torch.Tensor
    kl: torch.Tensor


class ConvDecoder(nn.Module):
    """z -> (C', H, W) likelihood parameters: a linear map to a grid of H/4 x W/4, two 2x transposed-conv
    upsamplings, and a final resize for sizes not divisible by 4."""

    def __init__(self, latent_dim: int, out_channels: int, image_size: tuple[int, int], width: int = 64) -> None:
        super().__init__()
        self.image_size = tuple(image_size)
        self.grid = tuple(math.ceil(s / 4) for s in self.image_size)
        self.width = width
        self.project = nn.Sequential(nn.Linear(latent_dim, width * self.grid[0] * self.grid[1]), nn.ReLU(inplace=True))
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(width, width, 4, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1), nn.BatchNorm2d(width // 2), nn.ReLU(inplace=True),
            nn.Conv2d(width // 2, out_channels, 3, padding=1),
        )  # fmt: skip

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.upsample(self.project(z).view(-1, self.width, *self.grid))
        if out.shape[-2:] != self.image_size:
            out = F.interpolate(out, size=self.image_size, mode="bilinear", align_corners=False)
        return out


def check_vae_settings(likelihood: str, latent_dim: int, decoder_width: int) -> None:
    """Refuses a generative branch that could not be built (checked even at alpha = 1, where none is);
    ``likelihood`` is the resolved name, not ``auto``."""
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"unknown model.likelihood {likelihood!r}; choose auto or one of {sorted(LIKELIHOODS)}")
    check_number("model.latent_dim", latent_dim, integer=True, at_least=1)
    check_number("model.decoder_width", decoder_width, integer=True, at_least=2)


class VAEBranch(nn.Module):
    """Amortised posterior q(z | x) = N(mu(h), diag(exp(logvar(h)))) on encoder features h, and p(x | z).

    With ``num_classes`` > 0 both are conditioned on the label, q(z | x, y) and p(x | y, z), as in Kingma et al.
    (2014)'s M2: the one-hot label is appended to the features and to z.
    """

    def __init__(
        self,
        in_features: int,
        image_shape: tuple[int, int, int],
        latent_dim: int,
        likelihood: str,
        decoder_width: int = 64,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        check_vae_settings(likelihood, latent_dim, decoder_width)
        channels, height, width = image_shape
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.likelihood = LIKELIHOODS[likelihood]()
        self.posterior = nn.Linear(in_features + num_classes, 2 * latent_dim)
        self.decoder = ConvDecoder(
            latent_dim + num_classes, self.likelihood.param_channels(channels), (height, width), decoder_width
        )

    def _condition(self, tensor: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if self.num_classes == 0:
            return tensor
        if labels is None:
            raise ValueError("a class-conditional VAE needs labels")
        return torch.cat([tensor, F.one_hot(labels, self.num_classes).to(tensor.dtype)], dim=1)

    def forward(
        self, features: torch.Tensor, images: torch.Tensor, labels: torch.Tensor | None = None, at_posterior_mean: bool = False
    ) -> ELBOTerms:
        """The negative ELBO's terms with one sample of z, or with z at the posterior mean: a deterministic score,
        no longer a bound."""
        mu, logvar = self.posterior(self._condition(features, labels)).chunk(2, dim=1)
        z = mu if at_posterior_mean else mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        params = self.decoder(self._condition(z, labels))
        return ELBOTerms(nll=-self.likelihood.log_prob(params, images), kl=gaussian_kl(mu, logvar))

    @torch.no_grad()
    def reconstruct(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Mean image in [0, 1] decoded from the posterior mean."""
        mu, _ = self.posterior(self._condition(features, labels)).chunk(2, dim=1)
        return self.likelihood.mean(self.decoder(self._condition(mu, labels)))

    @torch.no_grad()
    def sample(self, num: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Mean images in [0, 1] decoded from z ~ N(0, I) (given ``labels``, for a class-conditional VAE)."""
        weight = self.posterior.weight
        z = torch.randn(num, self.latent_dim, device=weight.device, dtype=weight.dtype)
        return self.likelihood.mean(self.decoder(self._condition(z, labels)))
