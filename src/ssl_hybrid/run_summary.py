"""The run's own summary, ``metrics.json``: one flat JSON object per run directory that other tooling reads
(offline W&B runs write no summary of their own), with the settings that tell runs apart, how far and how fast
training got, and the final metrics. Written on success, interruption and failure alike."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from ssl_hybrid.atomic_file import atomic_write

if TYPE_CHECKING:  # ssl-hybrid-compare reads summaries without importing Lightning
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import Timer

SUMMARY_FILE = "metrics.json"
LABELED_INDICES_FILE = "labeled_indices.json"
# Always present, null when unknown: test/nelbo_bpd is null when the generative branch is off.
REQUIRED_METRICS = ("test/acc", "test/nelbo_bpd", "val/acc_best")


# metrics.json keys for the settings that tell runs apart, and where each comes from in the config
RUN_FACTS = {
    "alpha": "model.alpha",
    "dataset": "data.dataset",
    "labels_per_class": "data.labels_per_class",
    "unlabeled_per_class": "data.unlabeled_per_class",
    "split_seed": "data.split_seed",
    "seed": "seed",
    "backbone": "model.backbone.name",
    "batch_size": "data.batch_size",
    "unlabeled_ratio": "data.unlabeled_ratio",
    "latent_dim": "model.latent_dim",
    "consistency_weight": "model.consistency_weight",
    "consistency_mask": "model.consistency_mask",
    "distribution_alignment": "model.distribution_alignment",
    "teacher_ema": "model.teacher_ema",
    "alpha_schedule": "model.alpha_schedule",
    "label_propagation": "data.label_propagation",
    "classify_with": "model.classify_with",
    "output_dir": "paths.output_dir",
}


def run_facts(cfg: DictConfig) -> dict[str, Any]:
    """The settings of :data:`RUN_FACTS` as JSON values (null where a config lacks one); mappings such as
    ``alpha_schedule`` as one ``key=value,...`` string, so that runs group by them."""
    return {name: _plain(OmegaConf.select(cfg, key, default=None)) for name, key in RUN_FACTS.items()}


def _plain(node: Any) -> Any:
    if isinstance(node, DictConfig):
        return ",".join(f"{key}={value}" for key, value in node.items())
    if isinstance(node, ListConfig):  # a wrong value that the model or datamodule will name
        return str(OmegaConf.to_container(node))
    return node


def training_progress(trainer: pl.Trainer, timer: Timer, images_per_step: int, startup_origin: float) -> dict[str, Any]:
    """How far training got and how fast: the latest metrics, the best validation score, steps and times."""
    progress: dict[str, Any] = plain_metrics(trainer.callback_metrics)
    checkpoint = trainer.checkpoint_callback
    if checkpoint is not None and checkpoint.best_model_score is not None:
        progress["val/acc_best"] = float(checkpoint.best_model_score)
        progress["best_checkpoint"] = checkpoint.best_model_path
    progress.update(global_step=trainer.global_step, epochs=trainer.current_epoch)
    if timer.start_time("train") is not None:
        train_seconds = timer.time_elapsed("train")
        progress.update(
            train_seconds=train_seconds,
            startup_seconds=timer.start_time("train") - startup_origin,
            train_images_per_second=trainer.global_step * images_per_step * trainer.world_size / max(train_seconds, 1e-9),
        )
    return progress


def plain_metrics(metrics: Mapping[str, Any]) -> dict[str, float | None]:
    """The epoch-level ``train/``, ``val/`` and ``test/`` metrics as floats; NaN and inf become None so the
    JSON stays standard. Per-step duplicates (``*_step``, ``*_epoch``) and learning rates are left out."""
    out = {}
    for key, value in metrics.items():
        if not key.startswith(("train/", "val/", "test/")) or key.endswith(("_step", "_epoch")):
            continue
        number = float(value.item() if isinstance(value, torch.Tensor) else value)
        out[key] = number if math.isfinite(number) else None
    return out


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as dotted keys: ``{"model": {"alpha": 0.9}}`` -> ``{"model.alpha": 0.9}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def write_json(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write atomically, so a reader never sees half a file."""
    with atomic_write(path) as file:
        file.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return Path(path)


def read_summary(run_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / SUMMARY_FILE).read_text())
