"""LightningDataModule that mixes a few labeled images with an abundant unlabeled pool."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import CombinedLoader
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from ssl_hybrid.data.labels import LabelSplit, split_labels
from ssl_hybrid.data.sampling import CyclingSampler, ResumableLoader
from ssl_hybrid.data.sources import SOURCES, DatasetSplits, LabeledImages, check_source_settings
from ssl_hybrid.label_propagation import GraphNodes, WhitenedPCA, propagate_labels
from ssl_hybrid.settings import check_number

PROPAGATION_KEYS = ("dims", "neighbours", "blur")  # of data.label_propagation


def apply_to_uint8(transform: Callable | None, images: torch.Tensor) -> torch.Tensor:
    """Run ``transform`` (floats in [0, 1]) on a uint8 batch and return uint8 again, so the likelihoods keep
    their discrete targets."""
    if transform is None:
        return images
    return transform(images.float() / 255).mul_(255).round_().clamp_(0, 255).to(torch.uint8)


class SemiSupervisedDataModule(pl.LightningDataModule):
    """Training batches are ``{"labeled": (x, y), "unlabeled": x}`` with ``batch_size`` labeled and
    ``round(unlabeled_ratio * batch_size)`` unlabeled uint8 images; an epoch is one pass over the unlabeled pool
    (over the labeled set when ``unlabeled_ratio`` is 0). With ``strong_transforms`` the unlabeled entry is a pair
    ``[weak, strong]`` of views (FixMatch's weak and strong augmentation). With ``label_propagation``
    (``{dims, neighbours, blur}``, see ``ssl_hybrid.label_propagation``) the labels are first spread over the
    pool, and ``"unlabeled_prior"`` holds each unlabeled image's class distribution. Validation and test batches
    are ``(x, y)``.

    Augmentation is applied to whole training batches after they reach the device (``on_after_batch_transfer``),
    with per-image random parameters: ``train_transforms`` and ``strong_transforms`` are batch transforms such as
    kornia's ``kornia.augmentation`` modules, taking and returning floats in [0, 1] of shape (N, C, H, W). The
    DataLoader only gathers uint8 tensors, so it never starves the step.

    Sampling is explicit rather than left to Lightning's sampler injection: under DDP every process keeps the
    whole labeled set and a shard of the unlabeled pool (run with ``use_distributed_sampler=False``).
    """

    def __init__(
        self,
        dataset: str,
        root: str | None = None,
        download: bool = False,
        labels_per_class: int | None = 10,
        split_seed: int = 0,
        val_per_class: int = 20,
        batch_size: int = 32,
        unlabeled_ratio: float = 7.0,
        unlabeled_includes_labeled: bool = True,
        unlabeled_per_class: int | None = None,
        image_size: int | None = None,
        train_transforms: Sequence[Callable] = (),
        strong_transforms: Sequence[Callable] = (),
        eval_batch_size: int = 512,
        num_workers: int = 0,
        source_options: dict[str, Any] | None = None,
        label_propagation: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if dataset not in SOURCES:
            raise ValueError(
                f"unknown data.dataset {dataset!r}; choose one of {sorted(SOURCES)} (a reader of your own enters "
                "ssl_hybrid.data.sources.SOURCES in a module that imports=[...] names)"
            )
        check_source_settings(dataset, root, source_options or {})
        check_number("data.batch_size", batch_size, integer=True, at_least=1)
        check_number("data.unlabeled_ratio", unlabeled_ratio, at_least=0)
        if unlabeled_ratio > 0 and round(unlabeled_ratio * batch_size) == 0:
            raise ValueError(
                f"data.unlabeled_ratio={unlabeled_ratio} gives no unlabeled image per step at data.batch_size={batch_size}: "
                "use 0 for none, or a larger ratio"
            )
        check_number("data.labels_per_class", labels_per_class, integer=True, at_least=1, nullable=True)  # null: all
        check_number("data.val_per_class", val_per_class, integer=True, at_least=0)
        check_number("data.unlabeled_per_class", unlabeled_per_class, integer=True, at_least=0, nullable=True)
        if labels_per_class is None and unlabeled_per_class:  # every image labeled: none are left to be unlabeled
            raise ValueError(
                f"data.unlabeled_per_class={unlabeled_per_class} counts images beyond the labeled ones, and "
                "data.labels_per_class=null labels them all: give data.labels_per_class a number"
            )
        check_number("data.split_seed", split_seed, integer=True, at_least=0)
        check_number("data.image_size", image_size, integer=True, at_least=1, nullable=True)  # null: native size
        check_number("data.eval_batch_size", eval_batch_size, integer=True, at_least=1)
        check_number("data.num_workers", num_workers, integer=True, at_least=0)
        if label_propagation is not None:
            if not isinstance(label_propagation, dict) or set(label_propagation) != set(PROPAGATION_KEYS):
                raise ValueError(f"data.label_propagation needs exactly the keys {PROPAGATION_KEYS}, got {label_propagation!r}")
            for key in ("dims", "neighbours"):
                check_number(f"data.label_propagation.{key}", label_propagation[key], integer=True, at_least=1)
            if not isinstance(label_propagation["blur"], bool):
                raise ValueError(f"data.label_propagation.blur must be true or false, got {label_propagation['blur']!r}")
        self.dataset, self.root, self.download = dataset, root, download
        self.labels_per_class, self.split_seed, self.val_per_class = labels_per_class, split_seed, val_per_class
        self.batch_size, self.unlabeled_ratio = batch_size, unlabeled_ratio
        self.unlabeled_includes_labeled, self.unlabeled_per_class = unlabeled_includes_labeled, unlabeled_per_class
        self.image_size, self.eval_batch_size, self.num_workers = image_size, eval_batch_size, num_workers
        self.train_transform = nn.Sequential(*train_transforms) if train_transforms else None
        self.strong_transform = nn.Sequential(*strong_transforms) if strong_transforms else None
        self.source_options = dict(source_options or {})
        self.label_propagation = label_propagation

    def prepare_data(self) -> None:
        _ = self.splits  # reading once on the main process downloads what is missing

    @cached_property
    def splits(self) -> DatasetSplits:
        splits = SOURCES[self.dataset](root=self.root, download=self.download, **self.source_options)
        return splits if self.image_size is None else splits.resized(self.image_size)

    @cached_property
    def label_split(self) -> LabelSplit:
        if self.unlabeled_per_class is not None and self.splits.extra_unlabeled is not None:
            raise ValueError(
                f"data.unlabeled_per_class counts images per class, and {self.dataset}'s "
                f"{len(self.splits.extra_unlabeled)} images without labels have none: leave it null"
            )
        return split_labels(
            self.splits.train.labels,
            labels_per_class=self.labels_per_class,
            val_per_class=0 if self.splits.val is not None else self.val_per_class,
            split_seed=self.split_seed,
            unlabeled_includes_labeled=self.unlabeled_includes_labeled,
            unlabeled_per_class=self.unlabeled_per_class,
        )

    @property
    def classes(self) -> tuple[str, ...]:
        return self.splits.classes

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.splits.image_shape

    @cached_property
    def val_images(self) -> LabeledImages:
        """The validation images: the source's own split, else ``val_per_class`` held out of the pool per class."""
        if self.splits.val is not None:
            return self.splits.val
        train, idx = self.splits.train, self.label_split.val
        return LabeledImages(train.images[idx], train.labels[idx])

    @property
    def num_val_images(self) -> int:
        return len(self.val_images)

    @property
    def unlabeled_batch_size(self) -> int:
        return round(self.unlabeled_ratio * self.batch_size)

    @property
    def images_per_step(self) -> int:
        """Labeled and unlabeled images of one training step on one process (strong views not counted)."""
        return self.batch_size + self.unlabeled_batch_size

    def split_record(self) -> dict[str, Any]:
        """The exact labeled set, as saved to ``labeled_indices.json`` (indices into the training pool)."""
        split = self.label_split
        return {
            "dataset": self.dataset,
            "split_seed": self.split_seed,
            "labels_per_class": self.labels_per_class,
            "unlabeled_per_class": self.unlabeled_per_class,
            "classes": list(self.classes),
            "labeled": split.labeled.tolist(),
            "labeled_labels": self.splits.train.labels[split.labeled].tolist(),
            "val": split.val.tolist(),
            "num_unlabeled": self.num_unlabeled,
        }

    @property
    def num_unlabeled(self) -> int:
        extra = self.splits.extra_unlabeled
        return len(self.label_split.unlabeled) + (0 if extra is None else len(extra))

    def _unlabeled_images(self) -> torch.Tensor:
        pool = self.splits.train.images[self.label_split.unlabeled]
        extra = self.splits.extra_unlabeled
        return pool if extra is None else torch.cat([pool, extra])

    @cached_property
    def graph_nodes(self) -> GraphNodes:
        """The labeled images, then the unlabeled pool, and the PCA fitted on them (``label_propagation``)."""
        if self.label_propagation is None:
            raise ValueError(f"a label graph over the pool needs data.label_propagation (keys {PROPAGATION_KEYS})")
        train, labeled = self.splits.train, self.label_split.labeled
        images = torch.cat([train.images[labeled], self._unlabeled_images()])
        settings = self.label_propagation
        pca = WhitenedPCA.fit(images, settings["dims"], settings["blur"])
        return GraphNodes(images, train.labels[labeled], pca, settings["neighbours"])

    @cached_property
    def propagated_labels(self) -> torch.Tensor:
        """Class distributions for the unlabeled pool, spread from the labeled images (``label_propagation``)."""
        nodes = self.graph_nodes
        spread = propagate_labels(nodes.images, nodes.labeled, nodes.labels, self.num_classes, nodes.pca, nodes.neighbours)
        return spread[len(nodes.labels) :]

    def _distributed(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def train_dataloader(self) -> CombinedLoader:
        world_size, rank = self._distributed()
        train = self.splits.train
        labeled = TensorDataset(train.images[self.label_split.labeled], train.labels[self.label_split.labeled])
        loaders = {}
        if self.unlabeled_batch_size > 0:
            unlabeled = self._unlabeled_images()  # a tensor is a dataset of its rows
            if self.label_propagation is not None:
                unlabeled = TensorDataset(unlabeled, self.propagated_labels)
            if len(unlabeled) < self.unlabeled_batch_size * world_size:
                larger_pool = "" if self.unlabeled_per_class is None else ", a larger data.unlabeled_per_class"
                remedy = (
                    f"lower data.batch_size or data.unlabeled_ratio{larger_pool}" if len(unlabeled) else "the labeled "
                    f"and validation images use up the training pool: data.unlabeled_includes_labeled=true{larger_pool}, "
                    "fewer data.val_per_class, or data.unlabeled_ratio=0 (no unlabeled term)"
                )
                raise ValueError(
                    f"the unlabeled pool ({len(unlabeled)} images) is smaller than one unlabeled batch "
                    f"({self.unlabeled_batch_size}) for each of {world_size} process(es): {remedy}"
                )
            shard = DistributedSampler(unlabeled, num_replicas=world_size, rank=rank, seed=self.split_seed, drop_last=True)
            loaders["unlabeled"] = ResumableLoader(unlabeled, self.unlabeled_batch_size, shard, **self._workers())
            steps = len(shard) // self.unlabeled_batch_size
        else:
            steps = math.ceil(len(labeled) / self.batch_size)
        cycle = CyclingSampler(len(labeled), steps * self.batch_size, seed=self.split_seed, rank=rank)
        loaders["labeled"] = ResumableLoader(labeled, self.batch_size, cycle, **self._workers())
        return CombinedLoader(loaders, mode="min_size")

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return self.augment(batch) if isinstance(batch, dict) else batch  # training batches are dicts

    def augment(self, batch: dict[str, Any]) -> dict[str, Any]:
        """A training batch as the model sees it: augmented views of the gathered uint8 images."""
        x_l, y_l = batch["labeled"]
        augmented = {"labeled": (self._view(self.train_transform, x_l, "train_transforms"), y_l)}
        if "unlabeled" in batch:
            x_u = batch["unlabeled"]
            if self.label_propagation is not None:
                x_u, augmented["unlabeled_prior"] = x_u
            weak = self._view(self.train_transform, x_u, "train_transforms")
            if self.strong_transform is None:
                augmented["unlabeled"] = weak
            else:
                augmented["unlabeled"] = [weak, self._view(self.strong_transform, x_u, "strong_transforms")]
        return augmented

    @staticmethod
    def _view(transform: Callable | None, images: torch.Tensor, key: str) -> torch.Tensor:
        view = apply_to_uint8(transform, images)
        if view.shape != images.shape:
            raise ValueError(
                f"data.{key} turn images of shape {tuple(images.shape[1:])} into {tuple(view.shape[1:])}: augmentations "
                "must keep the image size (check crop sizes against data.image_size)"
            )
        return view

    def _eval_loader(self, part: LabeledImages) -> DataLoader:
        return DataLoader(TensorDataset(part.images, part.labels), batch_size=self.eval_batch_size, **self._workers())

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.val_images)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.splits.test)

    def _workers(self) -> dict[str, Any]:
        # Workers are not kept from one pass to the next: each pass's iterator then draws its base seed from torch's
        # global generator, as it does without workers, so data.num_workers leaves the run's random draws
        # (augmentation, the VAE's noise) as they are
        return {"num_workers": self.num_workers}
