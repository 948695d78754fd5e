from __future__ import annotations

import math

import pytest
import torch
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


def test_where_a_bins_mass_underflows_it_is_the_density_at_the_centre_times_the_bin_width():
    # 1.5 to the right of the location at scale 0.1: a mass of about 2e-8, which float32 cannot tell from 0
    log_scale, x = math.log(0.1), torch.tensor(128, dtype=torch.uint8).view(1, 1, 1, 1)
    loc = 128 / 127.5 - 1.0 - 1.5
    params = torch.tensor([loc, log_scale]).view(1, 2, 1, 1)
    edges = torch.sigmoid(torch.tensor([1.5 + 1 / 255, 1.5 - 1 / 255], dtype=torch.float64) / 0.1)
    exact = torch.log(edges[0] - edges[1]).item()  # in float64
    assert DiscretizedLogistic().log_prob(params, x).item() == pytest.approx(exact, abs=0.01)


def test_bernoulli_log_prob_is_the_grey_levels_log_likelihood_summed_over_pixels():
    # by hand: logit 0 gives p = 1/2, so any grey level x costs x log 1/2 + (1 - x) log 1/2 = -log 2 per pixel;
    # logit log 3 gives p = 3/4, and x = 51/255 = 0.2 costs 0.2 log 3/4 + 0.8 log 1/4
    images = torch.tensor([0, 51, 255, 128], dtype=torch.uint8).view(1, 1, 2, 2)
    assert Bernoulli().log_prob(torch.zeros(1, 1, 2, 2), images).item() == pytest.approx(-4 * math.log(2))
    grey = torch.tensor([51], dtype=torch.uint8).view(1, 1, 1, 1)
    by_hand = 0.2 * math.log(0.75) + 0.8 * math.log(0.25)
    assert Bernoulli().log_prob(torch.full((1, 1, 1, 1), math.log(3)), grey).item() == pytest.approx(by_hand)
    # and written out in float64 for random logits and grey levels
    logits = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    images = torch.randint(0, 256, (3, 1, 4, 4), dtype=torch.uint8)
    x, p = images.double() / 255, 1 / (1 + torch.exp(-logits))
    expected = (x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum((1, 2, 3))
    assert torch.allclose(Bernoulli().log_prob(logits.float(), images).double(), expected, atol=1e-4)


def test_pseudo_label_consistency_is_the_weighted_cross_entropy_of_the_strong_view():
    strong = torch.tensor([[1.0, 2.0, 0.5], [3.0, 0.0, 0.0]])
    labels, weights = torch.tensor([0, 2]), torch.tensor([1.0, 0.25])
    # by hand: -log softmax(row)[label], weighted, then the mean over both images
    first = -math.log(math.exp(1.0) / (math.exp(1.0) + math.exp(2.0) + math.exp(0.5)))
    second = -math.log(math.exp(0.0) / (math.exp(3.0) + 2 * math.exp(0.0)))
    expected = (1.0 * first + 0.25 * second) / 2
    assert pseudo_label_consistency(strong, labels, weights).item() == pytest.approx(expected, rel=1e-6)
    assert pseudo_label_consistency(strong, labels, torch.zeros(2)).item() == 0.0


def test_ramped_alpha_goes_from_zero_to_alpha():
    assert [ramped_alpha(0.9, step, 100) for step in (0, 50, 100, 500)] == pytest.approx([0.0, 0.45, 0.9, 0.9])
    assert ramped_alpha(0.9, 0, 0) == 0.9
