"""What every ssl-hybrid LightningModule shares: a timm encoder (``self.backbone``) with a classifier head,
input normalisation, accuracy and ELBO logging, evaluation with the head, a generative classifier or a label
graph over the training pool, and the optimizer. Subclasses define the objective (``training_step``) and their
generative branch (``self.vae``)."""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import Container, OmegaConf
from pytorch_lightning.callbacks import BaseFinetuning
from pytorch_lightning.utilities import rank_zero_warn
from timm.optim import create_optimizer_v2, list_optimizers, param_groups_layer_decay, param_groups_weight_decay
from torch import nn
from torchmetrics import MaxMetric
from torchmetrics.classification import MulticlassAccuracy

from ssl_hybrid.checkpoint_io import read_checkpoint
from ssl_hybrid.label_propagation import GraphNodes
from ssl_hybrid.models.backbones import check_backbone_takes, create_backbone, without_pretrained_weights
from ssl_hybrid.models.label_graph import LabelGraph
from ssl_hybrid.models.vae import VAEBranch
from ssl_hybrid.objectives import bits_per_dim
from ssl_hybrid.settings import check_choice, check_number

DEFAULT_BACKBONE = {"name": "ssl_cnn_small", "pretrained": False}
DEFAULT_OPTIMIZER = {"name": "adamw", "lr": 2e-3, "weight_decay": 5e-4, "layer_decay": None}
DEFAULT_SCHEDULER = {"warmup_steps": 50}
CLASSIFY_WITH = ("head", "generative", "graph")
MODULE_CLASS_KEY = "ssl_hybrid_module"  # "module:Class" of the LightningModule, stored in every checkpoint
CLASS_NAMES_KEY = "ssl_hybrid_class_names"  # the data's class names, stored in every checkpoint
SCHEDULE_STEPS_KEY = "ssl_hybrid_schedule_steps"  # the length the learning-rate schedule was made for


def linear_warmup(step: int, warmup_steps: int) -> float:
    """A weight rising linearly to 1 over the first ``warmup_steps`` steps (step 0 already trains a little)."""
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


def warmup_cosine(warmup_steps: int, total_steps: int):
    """Multiplier for LambdaLR: linear warm-up, then a cosine decay to zero at ``total_steps``."""

    def factor(step: int) -> float:
        warmup = linear_warmup(step, warmup_steps)
        progress = min(step, total_steps) / max(1, total_steps)
        return warmup * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def check_training_settings(optimizer: dict[str, Any], scheduler: dict[str, Any]) -> None:
    """Refuses settings that would train nothing or the opposite of what they say, before training starts."""
    name = str(optimizer["name"]).lower().split("_")[-1]  # as timm parses it: "lookahead_adamw" is adamw
    if name not in list_optimizers():
        raise ValueError(f"model.optimizer.name {optimizer['name']!r} is not a timm optimizer (timm.optim.list_optimizers())")
    check_number("model.optimizer.lr", optimizer["lr"], above=0)
    check_number("model.optimizer.weight_decay", optimizer["weight_decay"], at_least=0)
    # below 1, earlier layers learn slower
    check_number("model.optimizer.layer_decay", optimizer["layer_decay"], above=0, at_most=1, nullable=True)
    check_number("model.scheduler.warmup_steps", scheduler["warmup_steps"], integer=True, at_least=0)


def split_views(batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``(x_labeled, y_labeled, x_unlabeled, x_unlabeled_strong)`` of a training batch; absent parts are None."""
    x_l, y_l = batch["labeled"]
    x_u, x_strong = batch.get("unlabeled"), None
    if isinstance(x_u, (list, tuple)):
        x_u, x_strong = x_u
    return x_l, y_l, x_u, x_strong


class SemiSupervisedModule(pl.LightningModule):
    """Subclasses call ``save_hyperparameters(logger=False)``; checkpoints store the arguments as plain
    containers, so they load with ``torch.load(weights_only=True)`` and with ``load_from_checkpoint`` outside Hydra.
    The loggers get the whole run config from ``train.py`` instead: the module's arguments again, at the top level,
    would sit beside ``model.*`` in W&B (``likelihood: auto`` beside the resolved one of the summary)."""

    objective: str = ""
    class_conditional = False  # whether it models p(x | y) and so can classify generatively

    def __init__(
        self,
        num_classes: int,
        image_shape: Sequence[int],
        alpha: float,
        backbone: dict[str, Any] | None,
        likelihood: str,
        optimizer: dict[str, Any] | None,
        scheduler: dict[str, Any] | None,
        classify_with: str = "head",
    ) -> None:
        super().__init__()
        check_number("model.alpha", alpha, at_least=0, at_most=1)
        check_choice("model.classify_with", classify_with, CLASSIFY_WITH)
        if classify_with == "generative" and not self.class_conditional:
            raise ValueError(f"model.classify_with=generative needs a class-conditional model; {self.objective!r} is not one")
        self.num_classes, self.image_shape = num_classes, tuple(image_shape)
        self.class_names = [str(label) for label in range(num_classes)]  # the data's own names once setup sees them
        self.schedule_steps: int | None = None  # set by configure_optimizers
        self.resumed_schedule: tuple[int, int | None] | None = None  # (step, schedule length) of a resumed checkpoint
        self.num_dims = math.prod(image_shape)
        self.classify_with = classify_with
        self.optimizer_settings = {**DEFAULT_OPTIMIZER, **(optimizer or {})}
        self.scheduler_settings = {**DEFAULT_SCHEDULER, **(scheduler or {})}
        check_training_settings(self.optimizer_settings, self.scheduler_settings)
        channels = image_shape[0]
        self.likelihood_name = likelihood
        if likelihood == "auto":
            self.likelihood_name = "bernoulli" if channels == 1 else "discretized_logistic"
        self.backbone = create_backbone(channels, **{**DEFAULT_BACKBONE, **(backbone or {})})
        check_backbone_takes(self.backbone, self.image_shape)
        self.classifier = nn.Linear(self.backbone.num_features, num_classes)
        self.vae: VAEBranch | None = None
        self.label_graph = LabelGraph() if classify_with == "graph" else None
        mean, std = (torch.tensor(self.backbone.pretrained_cfg[k], dtype=torch.float32) for k in ("mean", "std"))
        if len(mean) != channels:  # e.g. an RGB-pretrained backbone on grayscale: one channel at the average
            mean, std = mean.mean().repeat(channels), std.mean().repeat(channels)
        self.register_buffer("input_mean", mean.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("input_std", std.view(1, -1, 1, 1), persistent=False)
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc_best = MaxMetric()

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: Any, *args: Any, **kwargs: Any) -> SemiSupervisedModule:
        """Lightning's, except that a pretrained backbone is built without its weights (a file that may have moved,
        the hub): the checkpoint holds every weight. ``backbone=`` overrides that, as any hyperparameter. Remote
        paths (``s3://``...) and file objects are left to Lightning as they are."""
        if "backbone" not in kwargs and isinstance(checkpoint_path, (str, Path)) and Path(checkpoint_path).is_file():
            hparams = read_checkpoint(Path(checkpoint_path)).get("hyper_parameters", {})
            kwargs["backbone"] = without_pretrained_weights(hparams.get("backbone"))
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

    @property
    def alpha(self) -> float:
        return self.hparams.alpha

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # arguments given as OmegaConf containers (Hydra's instantiate without _convert_="all") are stored as plain
        # ones, which torch.load(weights_only=True) reads
        if hyper_parameters := checkpoint.get("hyper_parameters"):
            checkpoint["hyper_parameters"] = {
                key: OmegaConf.to_container(value, resolve=True) if isinstance(value, Container) else value
                for key, value in hyper_parameters.items()
            }
        checkpoint[MODULE_CLASS_KEY] = f"{type(self).__module__}:{type(self).__qualname__}"
        checkpoint[CLASS_NAMES_KEY] = self.class_names
        checkpoint[SCHEDULE_STEPS_KEY] = self.schedule_steps

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.class_names = checkpoint.get(CLASS_NAMES_KEY, self.class_names)
        self.resumed_schedule = (checkpoint.get("global_step", 0), checkpoint.get(SCHEDULE_STEPS_KEY))

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images to the backbone's input scale (its ``pretrained_cfg`` mean and std)."""
        return ((images.float() / 255.0 - self.input_mean) / self.input_std).to(self.input_mean.dtype)  # half under *-true precision

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Shared features of uint8 images."""
        return self.backbone(self.normalize(images))

    def encoders(self) -> list[nn.Module]:
        """The timm encoders, which ``model.optimizer.layer_decay`` and their ``no_weight_decay()`` apply to."""
        return [self.backbone]

    def encode_generative(self, images: torch.Tensor, shared_features: torch.Tensor | None = None) -> torch.Tensor:
        """Features the generative branch sees: the shared encoder's (``shared_features`` when already computed),
        unless a model has its own."""
        return self.encode(images) if shared_features is None else shared_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits for uint8 images, from the head, the generative classifier or the label graph
        (``classify_with``)."""
        # floats in [0, 1], torchvision's usual input, would be divided by 255 again: chance accuracy, silently
        if images.is_floating_point():
            raise TypeError(f"images must be uint8 (0..255), as the data served them, got {images.dtype}: (x * 255).round().to(torch.uint8)")
        if tuple(images.shape[-3:]) != self.image_shape:  # pooling would classify any size without a word
            raise ValueError(f"images must be {self.image_shape} (channels, height, width), as the model trained on, got {tuple(images.shape[-3:])}")
        if self.classify_with == "generative":
            return self.generative_logits(self.encode_generative(images), images)
        features = self.encode(images)
        return self.consult_label_graph(self.classifier(features), features, images)

    def consult_label_graph(self, logits: torch.Tensor, features: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """The label graph's log-probabilities once it is fitted (at test time, on the tested weights), else the
        head's ``logits`` (training and validation)."""
        if self.label_graph is None or not self.label_graph.fitted:
            return logits
        # floored: a class that no nearby node holds (0 in the graph's half precision) costs a large, finite CE
        return self.label_graph(images, features).clamp_min(torch.finfo(torch.float32).tiny).log()

    @torch.no_grad()
    def fit_label_graph(self, nodes: GraphNodes, chunk: int = 2048) -> None:
        """Spreads the labels over ``nodes`` on a graph of this encoder's features and the nodes' PCA."""
        encoded = torch.cat([self.encode(images.to(self.device)) for images in nodes.images.split(chunk)])
        self.label_graph.fit(nodes.pca, nodes.neighbours, nodes.images, encoded, nodes.labeled, nodes.labels, self.num_classes)

    def reads_propagated_labels(self) -> bool:
        """Whether training or testing uses the labels that ``data.label_propagation`` spreads over the pool."""
        return self.label_graph is not None

    def reads_unlabeled_images(self) -> bool:
        """Whether training reads the unlabeled batches: the generative branch does (alpha = 1 builds none)."""
        return self.vae is not None

    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule
        if getattr(datamodule, "classes", None) is not None:
            self.class_names = list(datamodule.classes)
        if stage == "fit" and getattr(datamodule, "unlabeled_batch_size", 0) > 0 and not self.reads_unlabeled_images():
            rank_zero_warn(
                f"this {self.objective!r} model reads no unlabeled images (alpha = 1: no generative branch, and no "
                "consistency term), yet each step loads and augments data.unlabeled_ratio x data.batch_size of them: "
                "data.unlabeled_ratio=0 skips them"
            )
        # before training, not after it: the graph is built at test time from the datamodule's propagation setting
        propagation = getattr(datamodule, "label_propagation", None)
        if self.label_graph is not None and propagation is None:
            raise ValueError("model.classify_with=graph needs a datamodule with data.label_propagation ({dims, neighbours, blur})")
        if stage == "fit" and propagation is not None and not self.reads_propagated_labels():
            raise ValueError(
                f"data.label_propagation is set, but this {self.objective!r} model does not use it: set "
                "data.label_propagation=null (it serves the label graph, model.classify_with=graph, and the blend's "
                "consistency term, model.consistency_weight > 0)"
            )

    def on_fit_start(self) -> None:
        # training from a tested checkpoint: its graph belongs to those weights and must not score validation
        if self.label_graph is not None:
            self.label_graph.reset()

    def on_test_start(self) -> None:
        if self.label_graph is not None:
            # at the test's precision (e.g. bf16 autocast), so nodes and test images are encoded alike
            with self.trainer.precision_plugin.test_step_context():
                self.fit_label_graph(self.trainer.datamodule.graph_nodes)

    def on_test_end(self) -> None:
        if self.label_graph is not None and self.trainer.ckpt_path and self.trainer.is_global_zero:
            self.store_label_graph(self.trainer.ckpt_path)

    def store_label_graph(self, ckpt_path: str | Path) -> None:
        """Writes the fitted graph into the checkpoint it was fitted on, so ``load_module`` predicts as tested.
        Only the graph's entries change: the file keeps the training state of the step it was saved at (the
        trainer's own ``save_checkpoint`` would stamp the current step, optimizer and loops on the best weights)."""
        checkpoint_io = self.trainer.strategy.checkpoint_io
        checkpoint = checkpoint_io.load_checkpoint(ckpt_path, map_location="cpu", weights_only=True)
        graph = self.label_graph.state_dict(prefix="label_graph.")
        checkpoint["state_dict"].update({k: v.cpu() if torch.is_tensor(v) else v for k, v in graph.items()})
        checkpoint_io.save_checkpoint(checkpoint, ckpt_path)

    def generative_logits(self, features: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """log p(y) + ELBO(x, y) per class: a generative classifier, for class-conditional models."""
        raise NotImplementedError

    def eval_elbo_terms(self, features: torch.Tensor, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image reconstruction NLL and KL (nats) of a bound on -log p(x), from the generative branch's
        ``features`` (``encode_generative``)."""
        raise NotImplementedError

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Mean images in [0, 1] reconstructed through the generative branch."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, num: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Mean images in [0, 1] decoded from the prior (per label, for class-conditional models)."""
        self._require_vae()
        if labels is not None and self.vae.num_classes == 0:
            raise ValueError(f"{self.objective!r} models are not class-conditional: sample without a label")
        if labels is None and self.vae.num_classes > 0:
            labels = torch.arange(num, device=self.device) % self.vae.num_classes
        return self.vae.sample(num, labels)

    def _require_vae(self) -> VAEBranch:
        if self.vae is None:
            raise RuntimeError("alpha = 1: this model has no generative branch")
        return self.vae

    def logs_this_step(self) -> bool:
        """Whether this training step's values reach the loggers (every ``trainer.log_every_n_steps`` steps).
        Training values are logged only then: in Lightning 2.6 each ``self.log`` call costs about 0.6 ms on this
        CPU (the result collection moves itself to the value's device), 5 to 10% of a small model's step if made
        for every value of every step (``scripts/benchmark.py --profile``)."""
        trainer = self._trainer
        if trainer is None:
            return True
        # Lightning reads trainer.log_every_n_steps=0 as "never"
        return trainer.log_every_n_steps > 0 and (self.global_step + 1) % trainer.log_every_n_steps == 0

    def log_training_step(self, logits: torch.Tensor, labels: torch.Tensor, values: dict[str, Any]) -> None:
        """``train/<name>`` for each value, and the accuracy of ``logits`` on the labeled images."""
        if self.logs_this_step():
            self.train_acc(logits, labels)
            named = {f"train/{name}": value for name, value in values.items()}
            self.log_dict({**named, "train/acc": self.train_acc}, prog_bar=True, batch_size=len(labels))

    def log_elbo(self, stage: str, nll: torch.Tensor, kl: torch.Tensor, batch_size: int) -> None:
        """Logs reconstruction, KL and their sum (the NELBO) in bits per dimension."""
        if stage == "train" and not self.logs_this_step():
            return
        recon, kl = (bits_per_dim(t.mean() / self.num_dims) for t in (nll, kl))
        on_step = stage == "train"
        self.log_dict(
            {f"{stage}/recon_bpd": recon, f"{stage}/kl_bpd": kl, f"{stage}/nelbo_bpd": recon + kl},
            on_step=on_step, on_epoch=not on_step, batch_size=batch_size, sync_dist=not on_step,
        )  # fmt: skip

    def _evaluate(self, stage: str, batch: tuple[torch.Tensor, torch.Tensor], accuracy: MulticlassAccuracy) -> None:
        images, labels = batch
        features = self.encode(images)
        generative_features = None
        if self.vae is not None:
            generative_features = self.encode_generative(images, features)
            self.log_elbo(stage, *self.eval_elbo_terms(generative_features, images), len(images))
        if self.classify_with == "generative":  # needs a class-conditional model with its VAE
            logits = self.generative_logits(generative_features, images)
        else:
            logits = self.classifier(features)
        if self.label_graph is not None and self.label_graph.fitted:
            head_correct = (logits.argmax(dim=1) == labels).float().mean()
            self.log(f"{stage}/acc_head", head_correct, batch_size=len(images), sync_dist=True)
            logits = self.consult_label_graph(logits, features, images)
        accuracy(logits, labels)
        self.log(f"{stage}/ce", F.cross_entropy(logits, labels), batch_size=len(images), sync_dist=True)
        self.log(f"{stage}/acc", accuracy, prog_bar=True, batch_size=len(images))

    def on_train_start(self) -> None:
        self.val_acc_best.reset()  # forget the sanity-check validation
        # resumed in place: the best so far lives in the checkpoint callback's state (the metric's is not saved)
        checkpoint = self.trainer.checkpoint_callback
        if checkpoint is not None and checkpoint.monitor == "val/acc" and checkpoint.best_model_score is not None:
            self.val_acc_best(checkpoint.best_model_score.to(self.device))

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("val", batch, self.val_acc)

    def on_validation_epoch_end(self) -> None:
        self.val_acc_best(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("test", batch, self.test_acc)

    @torch.no_grad()
    def on_test_epoch_end(self) -> None:
        # The validation images classified as the test images just were, at the test's precision: by the label
        # graph where it classifies, which val/acc is not, so a study can choose its settings on what it reports.
        datamodule = self.trainer.datamodule
        if datamodule is None or not len(loader := datamodule.val_dataloader()):
            return
        accuracy = MulticlassAccuracy(self.num_classes, average="micro").to(self.device)
        with self.trainer.precision_plugin.test_step_context():
            for images, labels in loader:
                accuracy.update(self(images.to(self.device)), labels.to(self.device))
        self.log("val/acc_as_tested", accuracy.compute(), sync_dist=True)

    def configure_optimizers(self) -> dict[str, Any]:
        if any(isinstance(callback, BaseFinetuning) for callback in self.trainer.callbacks):
            raise ValueError(
                "Lightning's finetuning callbacks (BackboneFinetuning) add parameter groups during training, which the "
                "warm-up + cosine schedule cannot follow: give the encoder smaller learning rates with "
                "model.optimizer.layer_decay instead"
            )
        settings = dict(self.optimizer_settings)
        name, lr, weight_decay = settings.pop("name"), settings.pop("lr"), settings.pop("weight_decay")
        layer_decay = settings.pop("layer_decay")
        groups = []
        for encoder in self.encoders():
            # as timm's own create_optimizer_v2(model): e.g. a ViT's position embedding and class token never decay
            no_decay = set(getattr(encoder, "no_weight_decay", set)())
            if layer_decay is None:
                groups += param_groups_weight_decay(encoder, weight_decay, no_weight_decay_list=no_decay)
            else:
                layered = param_groups_layer_decay(encoder, weight_decay, no_weight_decay_list=no_decay, layer_decay=layer_decay)
                # timm counts a model's own head as its top layer; built without one (num_classes=0), the encoder's
                # last block would train at the full rate of ssl-hybrid's head, one step above timm's scales
                for group in layered:
                    group["lr_scale"] *= layer_decay
                groups += layered
        encoder_ids = {id(p) for encoder in self.encoders() for p in encoder.parameters()}
        rest = nn.ParameterList([p for p in self.parameters() if id(p) not in encoder_ids])  # heads, the VAE
        groups += param_groups_weight_decay(rest, weight_decay)
        # timm stores layer decay as 'lr_scale', which only timm's schedulers apply; fold it into each group's
        # own lr so Lightning's torch schedulers honour it.
        for group in groups:
            group["lr"] = lr * group.pop("lr_scale", 1.0)
        optimizer = create_optimizer_v2(groups, opt=name, lr=lr, weight_decay=weight_decay, **settings)
        total_steps = self.trainer.estimated_stepping_batches
        if not math.isfinite(total_steps):
            raise ValueError("the warm-up + cosine schedule needs the run's length: set trainer.max_steps or trainer.max_epochs")
        self.schedule_steps = int(total_steps)
        warmup_steps = self.scheduler_settings["warmup_steps"]
        factor = warmup_cosine(warmup_steps, self.schedule_steps)
        step, planned = self.resumed_schedule or (0, None)
        if planned is not None and planned != self.schedule_steps:
            # LambdaLR keeps no closure in its state: the new length's cosine applies from the resumed step on
            rank_zero_warn(
                f"this resumed run's length ({self.schedule_steps} steps) is not the {planned} its checkpoint was "
                f"trained for: the learning rate follows the new length's warm-up + cosine, so at step {step} it is "
                f"{factor(step):.3g} x model.optimizer.lr instead of {warmup_cosine(warmup_steps, planned)(step):.3g} x"
            )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def load_module(ckpt_path: str | Path, map_location: str = "cpu") -> SemiSupervisedModule:
    """Any ssl-hybrid checkpoint as its LightningModule, in eval mode, without Hydra: the checkpoint names its
    class."""
    ckpt_path = Path(ckpt_path)
    target = read_checkpoint(ckpt_path).get(MODULE_CLASS_KEY)
    if target is None:
        raise ValueError(f"{ckpt_path} does not name its module class ({MODULE_CLASS_KEY}): ssl-hybrid did not write it")
    module, _, name = target.partition(":")
    # the checkpoint names the class: it imports this package's models only; a user's own model is found once
    # its module has been imported (``imports``), and only a model is taken
    if module.partition(".")[0] == "ssl_hybrid":
        importlib.import_module(module)
    elif module not in sys.modules:
        raise ValueError(
            f"{ckpt_path} names the module class {target!r}, from outside ssl_hybrid, which a checkpoint alone does "
            f"not import: import {module} first (imports=[{module}] on the command line, `import {module}` in Python)"
        )
    cls = getattr(sys.modules[module], name, None)
    if not (isinstance(cls, type) and issubclass(cls, SemiSupervisedModule)):
        raise ValueError(f"{ckpt_path} names the module class {target!r}, which is not an ssl_hybrid model")
    return cls.load_from_checkpoint(ckpt_path, map_location=map_location).eval()
