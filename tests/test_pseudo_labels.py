from __future__ import annotations

import math

import pytest
import torch

from ssl_hybrid.models.pseudo_labels import PseudoLabeler, align_to_uniform, soft_weights, threshold_weights


def test_threshold_weights_keep_only_confident_pseudo_labels():
    assert threshold_weights(torch.tensor([0.99, 0.95, 0.5]), 0.95).tolist() == [1.0, 1.0, 0.0]


def test_soft_weights_are_one_above_the_mean_and_a_gaussian_below():
    confidence = torch.tensor([0.9, 0.7, 0.5, 0.3])
    mean, var = torch.tensor(0.7), torch.tensor(0.04)  # std 0.2: the Gaussian's sigma is 0.1
    weights = soft_weights(confidence, mean, var)
    assert weights[:2].tolist() == [1.0, 1.0]
    assert weights[2:].tolist() == pytest.approx([math.exp(-2.0), math.exp(-8.0)], rel=1e-5)


def test_align_to_uniform_undoes_a_skewed_mean_prediction():
    mean_probs = torch.tensor([0.6, 0.3, 0.1])
    aligned = align_to_uniform(mean_probs.expand(4, 3), mean_probs)
    assert torch.allclose(aligned, torch.full((4, 3), 1 / 3))
    probs = torch.softmax(torch.randn(5, 3), dim=1)
    assert torch.allclose(align_to_uniform(probs, torch.full((3,), 1 / 3)), probs, atol=1e-6)


def test_threshold_mask_is_fixmatch():
    weak = torch.tensor([[8.0, 0.0, 0.0], [0.2, 0.1, 0.0], [0.0, 0.0, 9.0]])
    labels, weights = PseudoLabeler(3, threshold=0.95)(weak)
    assert labels.tolist() == [0, 0, 2] and weights.tolist() == [1.0, 0.0, 1.0]


def test_pseudo_label_weights_carry_no_gradient_to_the_weak_view():
    weak = torch.randn(4, 3, requires_grad=True)
    _, weights = PseudoLabeler(3, mask="soft", distribution_alignment=True)(weak * 10)
    assert not weights.requires_grad


def test_soft_mask_weighs_unsure_images_less_and_tracks_the_running_confidence():
    torch.manual_seed(0)
    labeler = PseudoLabeler(10, mask="soft")
    for _ in range(500):  # confident predictions: the running mean confidence rises from 1/10
        labeler(torch.randn(64, 10) * 4)
    assert labeler.confidence_mean.item() > 0.5 and labeler.confidence_var.item() < 0.2
    sure, unsure = torch.zeros(1, 10), torch.zeros(1, 10)
    sure[0, 3], unsure[0, 3] = 20.0, 1.0
    _, weights = labeler(torch.cat([sure, unsure]))
    assert weights[0].item() == 1.0 and 0.0 <= weights[1].item() < 0.5


def test_distribution_alignment_moves_pseudo_labels_off_an_over_predicted_class():
    torch.manual_seed(0)
    labeler = PseudoLabeler(3, threshold=0.0, distribution_alignment=True)
    skewed = torch.tensor([1.0, 0.0, 0.0]) + 0.5 * torch.randn(256, 3)  # class 0 favoured everywhere
    plain_labels, _ = PseudoLabeler(3, threshold=0.0)(skewed)
    for _ in range(300):
        labels, _ = labeler(skewed)
    assert (labels == 0).float().mean() < 0.5 < (plain_labels == 0).float().mean()


def test_statistics_are_frozen_in_eval_mode():
    labeler = PseudoLabeler(3, mask="soft", distribution_alignment=True).eval()
    before = {name: buffer.clone() for name, buffer in labeler.named_buffers()}
    labeler(torch.randn(8, 3) * 5)
    assert all(torch.equal(before[name], buffer) for name, buffer in labeler.named_buffers())


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="consistency_mask"):
        PseudoLabeler(3, mask="hard")
    for threshold in (1.5, 1.0):  # 1: reached only by float rounding, so every image would be masked
        with pytest.raises(ValueError, match="consistency_threshold must be a number >= 0 and < 1"):
            PseudoLabeler(3, threshold=threshold)


def test_a_prior_multiplies_the_prediction():
    weak = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]))
    prior = torch.tensor([[1 / 3, 1 / 3, 1 / 3], [0.1, 0.2, 0.7]])
    labels, weights = PseudoLabeler(3, threshold=0.5)(weak, prior)
    # uniform prior: the prediction stands; second row: 0.05 : 0.06 : 0.14 after the product
    assert labels.tolist() == [0, 2] and weights.tolist() == [1.0, 1.0]


def test_one_training_step_moves_each_running_statistic_a_hundredth_of_the_way():
    """momentum 0.99: an exponential moving average whose horizon is about 100 steps."""
    torch.manual_seed(0)
    labeler = PseudoLabeler(4, mask="soft", distribution_alignment=True)
    weak = torch.randn(16, 4) * 3
    probs = torch.softmax(weak, dim=1)
    mean_probs = 0.99 * torch.full((4,), 0.25) + 0.01 * probs.mean(dim=0)
    aligned = probs / mean_probs
    confidence = (aligned / aligned.sum(dim=1, keepdim=True)).max(dim=1).values
    labeler(weak)
    torch.testing.assert_close(labeler.mean_probs, mean_probs)
    torch.testing.assert_close(labeler.confidence_mean, 0.99 * 0.25 + 0.01 * confidence.mean())
    torch.testing.assert_close(labeler.confidence_var, 0.99 * 1.0 + 0.01 * confidence.var(correction=0))


def test_alignment_applies_to_the_prediction_times_the_prior():
    weak = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]))
    prior = torch.tensor([[1 / 3, 1 / 3, 1 / 3], [0.1, 0.2, 0.7]])
    product = torch.softmax(weak, dim=1) * prior
    product = product / product.sum(dim=1, keepdim=True)
    labeler = PseudoLabeler(3, threshold=0.5, distribution_alignment=True)
    labels, _ = labeler(weak, prior)
    # the running mean prediction tracks the product, not the network's prediction alone
    torch.testing.assert_close(labeler.mean_probs, 0.99 * torch.full((3,), 1 / 3) + 0.01 * product.mean(dim=0))
    assert labels.tolist() == align_to_uniform(product, labeler.mean_probs).argmax(dim=1).tolist() == [0, 2]
