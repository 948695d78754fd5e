"""Reproducible, stratified choice of the labeled and validation images from a training pool."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class LabelSplit:
    """Indices into the training pool. ``unlabeled`` excludes validation images and, unless asked otherwise,
    includes the labeled ones (their labels unused there), as in USB (Wang et al. 2022)."""

    labeled: torch.Tensor
    val: torch.Tensor
    unlabeled: torch.Tensor


def split_labels(
    labels: torch.Tensor,
    labels_per_class: int | None,
    val_per_class: int,
    split_seed: int,
    unlabeled_includes_labeled: bool = True,
    unlabeled_per_class: int | None = None,
) -> LabelSplit:
    """Per class, shuffle the pool with ``split_seed`` and take the first ``val_per_class`` images for validation,
    the next ``labels_per_class`` as labeled (``None``: all the rest) and the next ``unlabeled_per_class`` as the
    unlabeled ones beyond the labeled (``None``: all the rest). Taking prefixes of one permutation makes the choice
    nested: the 5-label set of a seed is inside its 10-label set, and the validation set does not move when
    ``labels_per_class`` changes."""
    labels_np = labels.numpy()
    rng = np.random.default_rng(split_seed)
    labeled, val, only_unlabeled = [], [], []
    for c in np.unique(labels_np):
        members = rng.permutation(np.flatnonzero(labels_np == c))
        wanted = len(members) - val_per_class if labels_per_class is None else labels_per_class
        taken = val_per_class + wanted + (unlabeled_per_class or 0)
        if wanted < 1 or taken > len(members):
            asked = "" if unlabeled_per_class is None else f" and data.unlabeled_per_class={unlabeled_per_class}"
            raise ValueError(
                f"class {c} has {len(members)} images in the training pool: too few for data.val_per_class="
                f"{val_per_class}, data.labels_per_class={'null' if labels_per_class is None else labels_per_class}{asked}"
            )
        val.append(members[:val_per_class])
        labeled.append(members[val_per_class : val_per_class + wanted])
        only_unlabeled.append(members[val_per_class + wanted : None if unlabeled_per_class is None else taken])
    labeled_idx, val_idx = np.sort(np.concatenate(labeled)), np.sort(np.concatenate(val))
    unlabeled_idx = np.concatenate(only_unlabeled)
    if unlabeled_includes_labeled:
        unlabeled_idx = np.concatenate([unlabeled_idx, labeled_idx])
    return LabelSplit(*(torch.from_numpy(i).long() for i in (labeled_idx, val_idx, np.sort(unlabeled_idx))))
