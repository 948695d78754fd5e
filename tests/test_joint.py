"""Bishop & Lasserre's one joint model: the class-conditional VAE classifies by Bayes' rule, on real digits."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import QUICK, accuracy, compose_train, digits_batch, quiet
from ssl_hybrid.models import JointModule, M2Module
from ssl_hybrid.models.base import load_module
from ssl_hybrid.train import train

SMALL = {"latent_dim": 4, "decoder_width": 8, "backbone": {"name": "ssl_cnn_small", "width": 8}}


def test_unlabeled_bound_with_its_own_posterior_is_log_sum_exp_of_the_class_bounds(digits, deterministic_z):
    torch.manual_seed(0)
    model = M2Module(10, (1, 8, 8), alpha=0.5, **SMALL).eval()
    images = digits.train.images[:4]
    with torch.no_grad():
        features = model.encode(images)
        own = model.unlabeled_terms(features, images, None)[0]
        generative_logits = model.generative_logits(features, images)
        head = model.unlabeled_terms(features, images, model.classifier(features))[0]
    assert torch.allclose(own, -torch.logsumexp(generative_logits, 1), rtol=1e-5)
    assert (head > own).all()  # Gibbs: any other q(y | x) gives a looser bound


def test_joint_loss_blends_the_conditional_and_the_joint_log_likelihood_of_one_model(digits, deterministic_z):
    torch.manual_seed(0)
    model = quiet(JointModule(10, (1, 8, 8), alpha=0.5, **SMALL)).eval()
    assert model.classifier is None and model.vae is not None
    batch = digits_batch(digits, n_labeled=4, n_unlabeled=3)
    (x_l, y_l), x_u = batch["labeled"], batch["unlabeled"]
    with torch.no_grad():
        logits = model(x_l)  # log p(y) + ELBO(x | y): Bayes' rule on the bound
        ce = torch.nn.functional.cross_entropy(logits, y_l)
        minus_log_joint = -logits.gather(1, y_l[:, None]).squeeze(1)  # -L(x, y)
        minus_log_marginal = -torch.logsumexp(model(x_u), 1)  # -log sum_y exp L(x, y)
    nelbo = torch.cat([minus_log_joint, minus_log_marginal]).mean() / x_l[0].numel()
    for alpha in (0.25, 0.75, 1.0):
        model.hparams.alpha = alpha
        expected = alpha * ce + (1 - alpha) * nelbo
        assert model.training_step(batch, 0).item() == pytest.approx(expected.item(), rel=1e-5)
    model.hparams.alpha = 0.0  # the generative objective alone: no cross-entropy at full weight, as M1's head has
    assert model.training_step(batch, 0).item() == pytest.approx(nelbo.item(), rel=1e-5)


def test_joint_step_decodes_each_image_once_per_class(digits):
    model = quiet(JointModule(10, (1, 8, 8), alpha=0.5, **SMALL))
    batch = digits_batch(digits, n_labeled=4, n_unlabeled=3)
    decoded = []
    model.vae.decoder.register_forward_hook(lambda module, inputs, output: decoded.append(len(output)))
    model.training_step(batch, 0)
    assert sum(decoded) == 10 * (4 + 3)  # the labeled -L(x, y) is read off the class logits, not decoded again


def test_joint_classifies_only_with_its_generative_model():
    with pytest.raises(ValueError, match=r"model.classify_with must be one of \('generative',\), got 'head'"):
        JointModule(10, (1, 8, 8), classify_with="head")


def test_joint_trains_at_alpha_one_and_loads_to_classify_as_tested(tmp_path, digits):
    out = tmp_path / "run"
    cfg = compose_train(*QUICK, "model=joint", "model.alpha=1.0", "trainer.max_steps=100", "trainer.val_check_interval=50", output_dir=out)
    summary = train(cfg)
    assert summary["status"] == "completed" and summary["objective"] == "joint" and summary["classify_with"] == "generative"
    # alpha = 1 still trains the VAE: it is the classifier, trained on the labels alone
    assert summary["test/acc"] >= 0.5 and summary["test/nelbo_bpd"] > 0, summary  # chance is 0.1
    model = load_module(out / "checkpoints" / "best.ckpt")
    assert isinstance(model, JointModule) and model.classifier is None
    with torch.no_grad():
        assert accuracy(model(digits.test.images), digits.test.labels) == pytest.approx(summary["test/acc"], abs=1e-6)
        assert model.reconstruct(digits.test.images[:5]).shape == (5, 1, 8, 8)
    assert math.isfinite(summary["val/acc_best"])
