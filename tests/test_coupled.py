"""Bishop & Lasserre's coupled prior: alpha 1 independent, alpha 0 tied, in between a finite pull."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from conftest import digits_batch, quiet
from ssl_hybrid.models import CoupledModule
from ssl_hybrid.objectives import coupling_strength
from ssl_hybrid.train import train


def test_alpha_maps_to_the_prior_precision():
    assert coupling_strength(1.0) == 0.0 and math.isinf(coupling_strength(0.0))
    assert coupling_strength(0.5) == pytest.approx(1.0)  # sigma^2 = alpha / (1 - alpha) = 1
    assert coupling_strength(0.9) == pytest.approx(1 / 9)


def test_alpha_one_is_the_discriminative_model_alone(digits):
    module = quiet(CoupledModule(10, (1, 8, 8), alpha=1.0)).eval()
    assert module.vae is None and module.generative_backbone is None
    assert module.prior_penalty().item() == 0.0
    batch = digits_batch(digits)
    x_l, y_l = batch["labeled"]
    with pytest.raises(RuntimeError, match="no generative branch"):
        module.reconstruct(x_l)
    with torch.no_grad():
        assert module.training_step(batch, 0).item() == pytest.approx(F.cross_entropy(module(x_l), y_l).item(), rel=1e-6)


def test_alpha_zero_ties_the_two_networks_and_trains_the_encoder_on_the_elbo_alone(digits):
    module = quiet(CoupledModule(10, (1, 8, 8), alpha=0.0)).eval()
    assert module.generative_backbone is module.backbone and module.generative_head is module.classifier
    assert module.prior_penalty().item() == 0.0
    batch = digits_batch(digits)
    ce = []
    module.log_training_step = lambda logits, labels, values: ce.append(values["ce"])
    loss = module.training_step(batch, 0)
    encoder = list(module.backbone.parameters())
    assert all(g is None for g in torch.autograd.grad(ce[0], encoder, retain_graph=True, allow_unused=True))
    assert all(g is not None and g.any() for g in torch.autograd.grad(loss, encoder)[:2])


def test_in_between_the_prior_pulls_the_networks_together(digits):
    module = quiet(CoupledModule(10, (1, 8, 8), alpha=0.5, coupling_scale=1.0))
    assert module.prior_penalty().item() == 0.0  # both start at the prior's mode
    with torch.no_grad():
        module.generative_head.weight.add_(0.1)
    count = sum(p.numel() for p in [*module.backbone.parameters(), *module.classifier.parameters()])
    expected = 0.5 * 1.0 * module.classifier.weight.numel() * 0.01 / count
    assert module.prior_penalty().item() == pytest.approx(expected, rel=1e-4)
    module.prior_penalty().backward()
    assert module.classifier.weight.grad.sum() < 0 < module.generative_head.weight.grad.sum()  # towards each other
    weaker = quiet(CoupledModule(10, (1, 8, 8), alpha=0.9, coupling_scale=1.0))
    weaker.load_state_dict(module.state_dict())
    assert weaker.prior_penalty().item() == pytest.approx(expected / 9, rel=1e-4)


def test_in_between_the_loss_is_ce_plus_the_generative_bound_plus_the_prior(digits, deterministic_z):
    module = quiet(CoupledModule(10, (1, 8, 8), alpha=0.5)).eval()
    with torch.no_grad():
        module.generative_head.weight.add_(0.1)  # the two networks differ: the prior costs something
    count = sum(p.numel() for p in [*module.backbone.parameters(), *module.classifier.parameters()])
    batch = digits_batch(digits)
    (x_l, y_l), x_u = batch["labeled"], batch["unlabeled"]
    with torch.no_grad():
        ce = F.cross_entropy(module(x_l), y_l)  # the discriminative network's
        images = torch.cat([x_l, x_u])
        nelbo = module.joint_nelbo(module.encode_generative(images), x_l, y_l, x_u)
        for alpha in (0.25, 0.75):
            module.hparams.alpha = alpha
            prior = 0.5 * module.hparams.coupling_scale * (1 - alpha) / alpha * module.classifier.weight.numel() * 0.01 / count
            assert prior > 1e-3 * (ce + nelbo)  # large enough that leaving it out would show
            assert module.training_step(batch, 0).item() == pytest.approx((ce + nelbo + prior).item(), rel=1e-5)


def test_generative_classification_at_alpha_one_is_refused():
    with pytest.raises(ValueError, match="alpha < 1"):
        CoupledModule(10, (1, 8, 8), alpha=1.0, classify_with="generative")


def test_generative_classifier_uses_only_the_generative_network(digits):
    module = quiet(CoupledModule(10, (1, 8, 8), alpha=0.5, classify_with="generative")).eval()
    images = digits.test.images[:6]
    with torch.no_grad():
        module.generative_head.weight.add_(0.1)  # the two networks now differ
        expected = module.generative_logits(module.encode_generative(images), images)
        module.backbone.forward = lambda _: pytest.fail("the discriminative encoder ran")
        logits = module(images)
    assert logits.shape == (6, 10)
    torch.testing.assert_close(logits, expected)


def test_coupled_trains_on_digits(train_cfg):
    summary = train(train_cfg("model=coupled", "model.alpha=0.5", "trainer.max_steps=100", "trainer.val_check_interval=50"))
    assert summary["status"] == "completed" and summary["objective"] == "coupled"
    assert summary["test/acc"] >= 0.5 and summary["test/nelbo_bpd"] > 0
