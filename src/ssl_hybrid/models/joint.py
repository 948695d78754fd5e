"""Bishop & Lasserre (2007)'s one joint model, deep: p(x, y) = p(y) p(x | y) is M2's class-conditional VAE, and
it classifies by Bayes' rule on its own bound, p(y | x) proportional to p(y) exp ELBO(x | y). There is no
separate classifier: alpha blends the conditional and the joint log-likelihood of the same parameters,

    loss = alpha * CE(p(y | x)) on labeled images + (1 - alpha) * [-L(x, y) on labeled, -log sum_y exp L(x, y)
    on unlabeled images] / D,

in nats per dimension (``ssl_hybrid.objectives.blend``, called from ``JointModule.training_step``). alpha = 1 is the
generative classifier trained discriminatively, alpha = 0 trained generatively."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ssl_hybrid.models.base import split_views
from ssl_hybrid.models.m2 import M2Module
from ssl_hybrid.objectives import blend
from ssl_hybrid.settings import check_choice


class JointModule(M2Module):
    objective = "joint"
    generative_at_alpha_1 = True

    def __init__(self, num_classes: int, image_shape: Sequence[int], classify_with: str = "generative", **kwargs: Any) -> None:
        """M2Module's arguments; the classifier is Bayes' rule on the VAE, so there is no head to classify with."""
        check_choice("model.classify_with", classify_with, ("generative",))
        super().__init__(num_classes, image_shape, classify_with=classify_with, **kwargs)
        self.classifier = None

    def label_logits(self, features: torch.Tensor) -> None:
        return None  # the unlabeled bound takes its own posterior, which is this model's p(y | x)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        x_l, y_l, x_u, _ = split_views(batch)
        features = self.encode(torch.cat([x_l, x_u]) if x_u is not None else x_l)
        n_l = len(x_l)
        class_terms = self.class_nelbo(features[:n_l], x_l)
        logits = -class_terms[0]  # log p(y) + ELBO(x | y), one sampled z per class
        ce = F.cross_entropy(logits, y_l)
        at_label = tuple(term.gather(1, y_l[:, None]).squeeze(1) for term in class_terms)  # -L(x, y): no second decode
        nelbo = self.joint_nelbo(features, x_l, y_l, x_u, labeled_terms=at_label)
        # blend keeps CE at full weight at alpha = 0 for a head on detached features (M1); here CE would train
        # the whole model, so alpha = 0 is the generative objective alone
        loss = blend(ce, nelbo, self.alpha) if self.alpha > 0 else nelbo
        self.log_training_step(logits, y_l, {"loss": loss, "ce": ce})
        return loss
