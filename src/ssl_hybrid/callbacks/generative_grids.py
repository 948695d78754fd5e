"""Shows what the generative branch has learned: reconstructions of validation images, and samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger
from torchvision.utils import make_grid, save_image

from ssl_hybrid.plots import comparison_grid


class GenerativeGrids(pl.Callback):
    """Every ``every_n_validations`` validations, logs two grids to W&B: ``val/reconstructions`` (the first
    validation images above their reconstructions) and ``val/samples`` (decoded from the prior; one column per
    class for class-conditional models). At the end of fitting writes the last ones to ``reconstructions.png``
    and ``samples.png`` in the run directory."""

    def __init__(self, output_dir: str, num_images: int = 32, every_n_validations: int = 1) -> None:
        self.output_dir = Path(output_dir)
        self.num_images, self.every_n_validations = num_images, every_n_validations
        self.images: torch.Tensor | None = None
        self.grids: dict[str, torch.Tensor] = {}
        self.validations = 0

    @staticmethod
    def _active(trainer: pl.Trainer, pl_module: pl.LightningModule) -> bool:
        return getattr(pl_module, "vae", None) is not None and trainer.is_global_zero and not trainer.sanity_checking

    def on_validation_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self.images is None and self._active(trainer, pl_module):
            self.images = batch[0][: self.num_images]

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.images is None or not self._active(trainer, pl_module):
            return
        self.validations += 1
        if (self.validations - 1) % self.every_n_validations:
            return
        conditional = pl_module.vae.num_classes > 0
        samples = pl_module.sample(self.num_images).float().cpu()
        columns = pl_module.num_classes if conditional else 8
        self.grids = {
            "reconstructions": comparison_grid(self.images, pl_module.reconstruct(self.images)),
            "samples": make_grid(samples, nrow=columns, padding=1, pad_value=0.5),
        }
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                for name, grid in self.grids.items():
                    logger.log_image(f"val/{name}", [grid], step=trainer.global_step)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for name, grid in self.grids.items():
            save_image(grid, self.output_dir / f"{name}.png")
