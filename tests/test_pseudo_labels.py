from __future__ import annotations

import pytest
import torch

from ssl_hybrid.models.pseudo_labels import PseudoLabeler


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
    with pytest.raises(ValueError, match="consistency_threshold"):
        PseudoLabeler(3, threshold=1.5)


def test_a_prior_multiplies_the_prediction():
    weak = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]))
    prior = torch.tensor([[1 / 3, 1 / 3, 1 / 3], [0.1, 0.2, 0.7]])
    labels, weights = PseudoLabeler(3, threshold=0.5)(weak, prior)
    # uniform prior: the prediction stands; second row: 0.05 : 0.06 : 0.14 after the product
    assert labels.tolist() == [0, 2] and weights.tolist() == [1.0, 1.0]
