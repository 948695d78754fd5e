"""The blend: one timm encoder shared by a classifier head and a VAE branch, trained on
``alpha * [CE(labeled) + consistency_weight * FixMatch(unlabeled)] + (1 - alpha) * NELBO(labeled + unlabeled)``
(see ``ssl_hybrid.objectives.blend``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import timm
import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2, param_groups_layer_decay, param_groups_weight_decay
from torch import nn
from torchmetrics import MaxMetric
from torchmetrics.classification import MulticlassAccuracy

from ssl_hybrid.models.vae import ELBOTerms, VAEBranch
from ssl_hybrid.objectives import bits_per_dim, blend, nelbo_per_dim, pseudo_label_consistency, ramped_alpha

DEFAULT_BACKBONE = {"name": "ssl_cnn_small", "pretrained": False}
DEFAULT_OPTIMIZER = {"name": "adamw", "lr": 2e-3, "weight_decay": 5e-4, "layer_decay": None}
DEFAULT_SCHEDULER = {"warmup_steps": 50}


def create_backbone(image_channels: int, name: str, **timm_kwargs: Any) -> nn.Module:
    """Any timm model as a feature extractor (``num_classes=0``: pooled features of width ``num_features``).
    ``pretrained=True`` fetches weights from the hub unless ``pretrained_cfg_overlay={"file": path}`` names a
    local file."""
    return timm.create_model(name, num_classes=0, in_chans=image_channels, **timm_kwargs)


def warmup_cosine(warmup_steps: int, total_steps: int):
    """Multiplier for LambdaLR: linear warm-up, then a cosine decay to zero at ``total_steps``."""

    def factor(step: int) -> float:
        warmup = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
        progress = min(step, total_steps) / max(1, total_steps)
        return warmup * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


class HybridModule(pl.LightningModule):
    """Hyperparameters are plain containers, so checkpoints load with ``torch.load(weights_only=True)`` and with
    ``HybridModule.load_from_checkpoint`` outside Hydra."""

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
        alpha_schedule: dict[str, Any] | None = None,
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"model.alpha must lie in [0, 1], got {alpha}")
        self.save_hyperparameters()
        channels = image_shape[0]
        backbone = {**DEFAULT_BACKBONE, **(backbone or {})}
        self.backbone = create_backbone(channels, **backbone)
        self.classifier = nn.Linear(self.backbone.num_features, num_classes)
        if likelihood == "auto":
            likelihood = "bernoulli" if channels == 1 else "discretized_logistic"
        self.ramp_steps = int((alpha_schedule or {}).get("ramp_steps", 0))
        # alpha = 1 is purely discriminative: no generative parameters to train (or to leave unused under DDP).
        self.vae = (
            VAEBranch(self.backbone.num_features, tuple(image_shape), latent_dim, likelihood, decoder_width)
            if alpha < 1.0 or self.ramp_steps > 0
            else None
        )
        mean, std = (torch.tensor(self.backbone.pretrained_cfg[k], dtype=torch.float32) for k in ("mean", "std"))
        if len(mean) != channels:  # e.g. an RGB-pretrained backbone on grayscale: one channel at the average
            mean, std = mean.mean().repeat(channels), std.mean().repeat(channels)
        self.register_buffer("input_mean", mean.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("input_std", std.view(1, -1, 1, 1), persistent=False)
        self.num_dims = math.prod(image_shape)

        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc_best = MaxMetric()

    @property
    def alpha(self) -> float:
        """The blending weight at the current step (``model.alpha``, ramped by ``model.alpha_schedule``)."""
        return ramped_alpha(self.hparams.alpha, self.global_step, self.ramp_steps)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Shared features of uint8 images."""
        return self.backbone((images.float() / 255.0 - self.input_mean) / self.input_std)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits for uint8 images."""
        return self.classifier(self.encode(images))

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        if self.vae is None:
            raise RuntimeError("alpha = 1: this model has no generative branch to reconstruct with")
        return self.vae.reconstruct(self.encode(images))

    def _kl_weight(self) -> float:
        warmup = self.hparams.kl_warmup_steps
        return min(1.0, (self.global_step + 1) / warmup) if self.training and warmup > 0 else 1.0

    def _elbo_loss(self, stage: str, terms: ELBOTerms, batch_size: int) -> torch.Tensor:
        """Logs the ELBO terms in bits/dim (recon + kl = nelbo) and returns the loss-side NELBO in nats/dim."""
        recon, kl = (bits_per_dim(t.mean() / self.num_dims) for t in (terms.nll, terms.kl))
        on_step = stage == "train"
        self.log_dict(
            {f"{stage}/recon_bpd": recon, f"{stage}/kl_bpd": kl, f"{stage}/nelbo_bpd": recon + kl},
            on_step=on_step, on_epoch=True, batch_size=batch_size, sync_dist=not on_step,
        )  # fmt: skip
        return nelbo_per_dim(terms.nll, terms.kl, self.num_dims, self._kl_weight())

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        x_l, y_l = batch["labeled"]
        x_u, x_strong = batch.get("unlabeled"), None
        if isinstance(x_u, (list, tuple)):
            x_u, x_strong = x_u
        alpha, consistency_weight = self.alpha, self.hparams.consistency_weight
        if consistency_weight > 0 and x_strong is None:
            raise ValueError("model.consistency_weight > 0 needs strongly augmented unlabeled views: set data.strong_transforms")
        generative = self.vae is not None and alpha < 1.0
        weak = [x_u] if x_u is not None and (generative or consistency_weight > 0) else []
        strong = [x_strong] if consistency_weight > 0 else []
        features = self.encode(torch.cat([x_l, *weak, *strong]))
        # alpha = 0: the encoder learns from the ELBO alone and the head is fit on frozen features (M1).
        logits = self.classifier(features.detach() if alpha == 0.0 else features)
        n_l, n_u = len(x_l), sum(len(x) for x in weak)
        ce = F.cross_entropy(logits[:n_l], y_l)
        discriminative = ce
        if consistency_weight > 0:
            consistency, mask_rate = pseudo_label_consistency(
                logits[n_l : n_l + n_u], logits[n_l + n_u :], self.hparams.consistency_threshold
            )
            discriminative = ce + consistency_weight * consistency
            self.log_dict({"train/consistency": consistency, "train/mask_rate": mask_rate}, batch_size=n_u)
        nelbo = None
        if generative:
            generated = torch.cat([x_l, *weak])
            nelbo = self._elbo_loss("train", self.vae(features[: n_l + n_u], generated), len(generated))
        loss = blend(discriminative, nelbo, alpha)
        self.train_acc(logits[:n_l], y_l)
        self.log_dict(
            {"train/loss": loss, "train/ce": ce, "train/acc": self.train_acc, "train/alpha": alpha},
            on_step=True, on_epoch=True, prog_bar=True, batch_size=n_l,
        )  # fmt: skip
        return loss

    def _evaluate(self, stage: str, batch: tuple[torch.Tensor, torch.Tensor], accuracy: MulticlassAccuracy) -> None:
        images, labels = batch
        features = self.encode(images)
        logits = self.classifier(features)
        accuracy(logits, labels)
        self.log(f"{stage}/ce", F.cross_entropy(logits, labels), batch_size=len(images), sync_dist=True)
        self.log(f"{stage}/acc", accuracy, prog_bar=True, batch_size=len(images))
        if self.vae is not None:
            self._elbo_loss(stage, self.vae(features, images), len(images))

    def on_train_start(self) -> None:
        self.val_acc_best.reset()  # forget the sanity-check validation

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("val", batch, self.val_acc)

    def on_validation_epoch_end(self) -> None:
        self.val_acc_best(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("test", batch, self.test_acc)

    def configure_optimizers(self) -> dict[str, Any]:
        settings = {**DEFAULT_OPTIMIZER, **(self.hparams.optimizer or {})}
        name, lr, weight_decay = settings.pop("name"), settings.pop("lr"), settings.pop("weight_decay")
        layer_decay = settings.pop("layer_decay")
        heads = nn.ModuleList([self.classifier] + ([self.vae] if self.vae is not None else []))
        if layer_decay is None:
            groups = param_groups_weight_decay(self.backbone, weight_decay)
        else:
            groups = param_groups_layer_decay(self.backbone, weight_decay, layer_decay=layer_decay)
        groups += param_groups_weight_decay(heads, weight_decay)
        # timm stores layer decay as 'lr_scale', which only timm's schedulers apply; fold it into each group's
        # own lr so Lightning's torch schedulers honour it.
        for group in groups:
            group["lr"] = lr * group.pop("lr_scale", 1.0)
        optimizer = create_optimizer_v2(groups, opt=name, lr=lr, weight_decay=weight_decay, **settings)
        schedule = {**DEFAULT_SCHEDULER, **(self.hparams.scheduler or {})}
        factor = warmup_cosine(schedule["warmup_steps"], int(self.trainer.estimated_stepping_batches))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
