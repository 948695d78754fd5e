from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from ssl_hybrid.models.likelihoods import Bernoulli, DiscretizedLogistic
from ssl_hybrid.objectives import (
    bits_per_dim,
    blend,
    gaussian_kl,
    nelbo_per_dim,
    pseudo_label_consistency,
    ramped_alpha,
)


def test_gaussian_kl_matches_torch_distributions():
    mu, logvar = torch.randn(5, 3), torch.randn(5, 3)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(gaussian_kl(mu, logvar), expected, atol=1e-5)


def test_nelbo_per_dim_and_bits():
    nll, kl = torch.tensor([64.0, 128.0]), torch.tensor([8.0, 8.0])
    assert nelbo_per_dim(nll, kl, num_dims=64).item() == pytest.approx((72 + 136) / 2 / 64)
    assert nelbo_per_dim(nll, kl, num_dims=64, kl_weight=0.0).item() == pytest.approx(1.5)
    assert bits_per_dim(torch.tensor(math.log(2.0))).item() == pytest.approx(1.0)


def test_blend_weights_the_two_objectives():
    ce, nelbo = torch.tensor(2.0), torch.tensor(0.5)
    assert blend(ce, nelbo, 0.9).item() == pytest.approx(0.9 * 2.0 + 0.1 * 0.5)
    assert blend(ce, None, 1.0).item() == 2.0
    assert blend(ce, nelbo, 0.0).item() == pytest.approx(2.5)  # M1: CE computed on detached features
    with pytest.raises(ValueError):
        blend(ce, None, 0.5)
    with pytest.raises(ValueError):
        blend(ce, nelbo, 1.5)


def test_discretized_logistic_is_a_distribution_over_the_256_levels():
    likelihood = DiscretizedLogistic()
    levels = torch.arange(256, dtype=torch.uint8).view(256, 1, 1, 1)
    for loc, log_scale in [(0.0, -2.0), (0.7, -4.0), (-1.0, -1.0), (0.2, -6.5)]:
        params = torch.tensor([loc, log_scale]).view(1, 2, 1, 1).expand(256, 2, 1, 1)
        total = likelihood.log_prob(params, levels).exp().sum()
        assert total.item() == pytest.approx(1.0, abs=2e-3)


def test_bernoulli_log_prob_is_minus_bce_summed_over_pixels():
    logits = torch.randn(3, 1, 4, 4)
    images = torch.randint(0, 256, (3, 1, 4, 4), dtype=torch.uint8)
    expected = -F.binary_cross_entropy_with_logits(logits, images.float() / 255, reduction="none").sum((1, 2, 3))
    assert torch.allclose(Bernoulli().log_prob(logits, images), expected)


def test_pseudo_label_consistency_counts_only_confident_images():
    weak = torch.tensor([[8.0, 0.0, 0.0], [0.2, 0.1, 0.0]])  # confident class 0; unsure
    strong = torch.tensor([[1.0, 2.0, 0.5], [3.0, 0.0, 0.0]])
    loss, mask_rate = pseudo_label_consistency(weak, strong, threshold=0.95)
    expected = F.cross_entropy(strong[:1], torch.tensor([0])) / 2  # mean over both images, one counted
    assert loss.item() == pytest.approx(expected.item()) and mask_rate.item() == 0.5
    assert pseudo_label_consistency(weak, strong, threshold=0.0)[1].item() == 1.0


def test_pseudo_labels_carry_no_gradient_to_the_weak_view():
    weak, strong = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    pseudo_label_consistency(weak * 10, strong, threshold=0.0)[0].backward()
    assert weak.grad is None and strong.grad.abs().sum() > 0


def test_ramped_alpha_goes_from_zero_to_alpha():
    assert [ramped_alpha(0.9, step, 100) for step in (0, 50, 100, 500)] == pytest.approx([0.0, 0.45, 0.9, 0.9])
    assert ramped_alpha(0.9, 0, 0) == 0.9
