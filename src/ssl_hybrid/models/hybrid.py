"""The blend: one timm encoder shared by a classifier head and a VAE branch, trained on
``alpha * [CE(labeled) + consistency_weight * FixMatch(unlabeled)] + (1 - alpha) * NELBO(labeled + unlabeled)``
(see ``ssl_hybrid.objectives.blend``)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from pytorch_lightning.utilities import rank_zero_warn
from torch import nn

from ssl_hybrid.models.base import SemiSupervisedModule, linear_warmup, split_views
from ssl_hybrid.models.pseudo_labels import PseudoLabeler, check_pseudo_label_settings
from ssl_hybrid.models.vae import VAEBranch, check_vae_settings
from ssl_hybrid.objectives import blend, head_input, nelbo_per_dim, pseudo_label_consistency, ramped_alpha
from ssl_hybrid.settings import check_number


class HybridModule(SemiSupervisedModule):
    objective = "blend"

    def __init__(
        self,
        num_classes: int,
        image_shape: Sequence[int],
        alpha: float = 0.9,
        latent_dim: int = 16,
        backbone: dict[str, Any] | None = None,
        likelihood: str = "auto",
        decoder_width: int = 64,
        kl_warmup_steps: int = 0,
        consistency_weight: float = 0.0,
        consistency_threshold: float = 0.95,
        consistency_mask: str = "threshold",
        distribution_alignment: bool = False,
        teacher_ema: float | None = None,
        alpha_schedule: dict[str, Any] | None = None,
        classify_with: str = "head",
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(num_classes, image_shape, alpha, backbone, likelihood, optimizer, scheduler, classify_with)
        self.save_hyperparameters(logger=False)
        check_vae_settings(self.likelihood_name, latent_dim, decoder_width)
        if alpha_schedule is not None:
            if not isinstance(alpha_schedule, dict) or set(alpha_schedule) != {"ramp_steps"}:
                raise ValueError(f"model.alpha_schedule must be null or {{ramp_steps: N}}, got {alpha_schedule!r}")
            check_number("model.alpha_schedule.ramp_steps", alpha_schedule["ramp_steps"], integer=True, at_least=0)
        check_number("model.kl_warmup_steps", kl_warmup_steps, integer=True, at_least=0)
        check_number("model.consistency_weight", consistency_weight, at_least=0)
        check_number("model.teacher_ema", teacher_ema, above=0, below=1, nullable=True)
        if teacher_ema is not None and consistency_weight == 0:
            raise ValueError("model.teacher_ema makes the consistency term's pseudo-labels: set model.consistency_weight > 0, or teacher_ema=null")
        check_pseudo_label_settings(consistency_mask, consistency_threshold)
        self.ramp_steps = int((alpha_schedule or {}).get("ramp_steps", 0))
        self.pseudo_labeler: PseudoLabeler | None = None
        if consistency_weight > 0:
            self.pseudo_labeler = PseudoLabeler(num_classes, consistency_mask, consistency_threshold, distribution_alignment)
        # Mean Teacher (Tarvainen & Valpola 2017): pseudo-labels from an exponential moving average of the encoder
        # and head instead of the model being trained.
        self.teacher: nn.Sequential | None = None
        if teacher_ema is not None:
            self.teacher = nn.Sequential(copy.deepcopy(self.backbone), copy.deepcopy(self.classifier)).requires_grad_(False)
        # alpha = 1 is purely discriminative: no generative parameters to train (or to leave unused under DDP).
        if alpha < 1.0 or self.ramp_steps > 0:
            self.vae = VAEBranch(self.backbone.num_features, self.image_shape, latent_dim, self.likelihood_name, decoder_width)

    @property
    def alpha(self) -> float:
        """The blending weight at the current step (``model.alpha``, ramped by ``model.alpha_schedule``)."""
        return ramped_alpha(self.hparams.alpha, self.global_step, self.ramp_steps)

    def on_train_start(self) -> None:
        super().on_train_start()
        total = self.trainer.estimated_stepping_batches
        for key, steps in [("model.alpha_schedule.ramp_steps", self.ramp_steps), ("model.kl_warmup_steps", self.hparams.kl_warmup_steps)]:
            if steps > total:
                rank_zero_warn(f"{key}={steps} is longer than the run ({total} steps): it ends {total / steps:.0%} of the way up the ramp")

    def _kl_weight(self) -> float:
        return linear_warmup(self.global_step, self.hparams.kl_warmup_steps)

    def eval_elbo_terms(self, features: torch.Tensor, images: torch.Tensor):
        terms = self.vae(features, images)
        return terms.nll, terms.kl

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        return self._require_vae().reconstruct(self.encode(images))

    @torch.no_grad()
    def teacher_logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.teacher.eval()(self.normalize(images))

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        # the teacher follows each optimizer step inside it, so that a checkpoint saved after the step (by a
        # callback's on_train_batch_end, which runs before the module's) holds the teacher of that step
        super().optimizer_step(*args, **kwargs)
        if self.teacher is None:
            return
        decay = self.hparams.teacher_ema
        with torch.no_grad():
            student = nn.Sequential(self.backbone, self.classifier)
            for teacher_param, param in zip(self.teacher.parameters(), student.parameters()):
                teacher_param.lerp_(param, 1.0 - decay)
            for teacher_buffer, buffer in zip(self.teacher.buffers(), student.buffers()):
                teacher_buffer.copy_(buffer)

    def reads_propagated_labels(self) -> bool:
        return super().reads_propagated_labels() or self.hparams.consistency_weight > 0

    def reads_unlabeled_images(self) -> bool:
        return super().reads_unlabeled_images() or self.hparams.consistency_weight > 0

    def setup(self, stage: str) -> None:
        super().setup(stage)
        datamodule = self.trainer.datamodule
        if stage != "fit" or self.hparams.consistency_weight == 0 or datamodule is None:
            return
        if datamodule.unlabeled_batch_size == 0:
            raise ValueError("model.consistency_weight > 0 needs unlabeled images: set data.unlabeled_ratio > 0")
        if datamodule.strong_transform is None:
            raise ValueError("model.consistency_weight > 0 needs strongly augmented unlabeled views: set data.strong_transforms")

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        x_l, y_l, x_u, x_strong = split_views(batch)
        alpha, consistency_weight = self.alpha, self.hparams.consistency_weight
        # after a ramp up to alpha = 1 the branch still runs, at weight 0, so that under DDP every parameter keeps
        # taking part in the loss
        generative = self.vae is not None
        student_labels_weak_view = consistency_weight > 0 and self.teacher is None
        weak = [x_u] if x_u is not None and (generative or student_labels_weak_view) else []
        strong = [x_strong] if consistency_weight > 0 else []
        features = self.encode(torch.cat([x_l, *weak, *strong]))
        logits = self.classifier(head_input(features, alpha))
        n_l, n_u = len(x_l), sum(len(x) for x in weak)
        ce = F.cross_entropy(logits[:n_l], y_l)
        discriminative, logs = ce, {"ce": ce, "alpha": alpha}
        if consistency_weight > 0:
            weak_logits = logits[n_l : n_l + n_u] if student_labels_weak_view else self.teacher_logits(x_u)
            pseudo_labels, weights = self.pseudo_labeler(weak_logits, batch.get("unlabeled_prior"))
            consistency = pseudo_label_consistency(logits[n_l + n_u :], pseudo_labels, weights)
            discriminative = ce + consistency_weight * consistency
            logs.update(consistency=consistency, mask_rate=weights.mean())
        nelbo = None
        if generative:
            generated = torch.cat([x_l, *weak])
            terms = self.vae(features[: n_l + n_u], generated)
            self.log_elbo("train", terms.nll, terms.kl, len(generated))
            nelbo = nelbo_per_dim(terms.nll, terms.kl, self.num_dims, self._kl_weight())
        loss = blend(discriminative, nelbo, alpha)
        self.log_training_step(logits[:n_l], y_l, {"loss": loss, **logs})
        return loss
