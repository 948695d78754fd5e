"""Pixel likelihoods p(x | z) for uint8 images. ``log_prob`` is summed over all pixel dimensions (nats)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Bernoulli(nn.Module):
    """Bernoulli with grey levels in [0, 1] as targets: the usual VAE likelihood for MNIST-like grayscale."""

    def param_channels(self, channels: int) -> int:
        return channels

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        target = x.float() / 255.0
        return -F.binary_cross_entropy_with_logits(params, target, reduction="none").flatten(1).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)


class DiscretizedLogistic(nn.Module):
    """A logistic per sub-pixel, discretised to the 256 levels (Salimans et al. 2017, PixelCNN++ without the
    mixture): a proper probability mass on 8-bit colour, so bits/dim compare with the literature."""

    def param_channels(self, channels: int) -> int:
        return 2 * channels  # a location and a log-scale per channel

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        loc, log_scale = params.chunk(2, dim=1)
        log_scale = log_scale.clamp(min=-7.0)
        centred = x.float() / 127.5 - 1.0 - loc  # pixel bins are 2/255 wide on [-1, 1]
        inv_scale = torch.exp(-log_scale)
        upper = inv_scale * (centred + 1.0 / 255.0)
        lower = inv_scale * (centred - 1.0 / 255.0)
        cdf_delta = torch.sigmoid(upper) - torch.sigmoid(lower)
        mid = inv_scale * centred
        # log-density at the bin centre, used where the bin mass underflows
        log_pdf_mid = mid - log_scale - 2.0 * F.softplus(mid) - math.log(127.5)
        interior = torch.where(cdf_delta > 1e-5, torch.log(cdf_delta.clamp(min=1e-12)), log_pdf_mid)
        log_p = torch.where(
            x == 0, upper - F.softplus(upper), torch.where(x == 255, -F.softplus(lower), interior)
        )
        return log_p.flatten(1).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        loc, _ = params.chunk(2, dim=1)
        return ((loc.clamp(-1.0, 1.0) + 1.0) / 2.0)


LIKELIHOODS = {"bernoulli": Bernoulli, "discretized_logistic": DiscretizedLogistic}
