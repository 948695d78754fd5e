"""Shows what the generative branch has learned: validation images above their reconstructions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger
from torchvision.utils import save_image

from ssl_hybrid.plots import comparison_grid


class ReconstructionGrid(pl.Callback):
    """After each validation, logs a grid (originals above reconstructions of the first validation images) to
    W&B as ``val/reconstructions``; at the end of fitting writes the last grid to ``reconstructions.png``."""

    def __init__(self, output_dir: str, num_images: int = 32) -> None:
        self.output_path = Path(output_dir) / "reconstructions.png"
        self.num_images = num_images
        self.images: torch.Tensor | None = None
        self.grid: torch.Tensor | None = None

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
        self.grid = comparison_grid(self.images, pl_module.reconstruct(self.images))
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image("val/reconstructions", [self.grid], step=trainer.global_step)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.grid is not None:
            self.output_path.parent.mkdir(parents=True, exist_ok=True)
            save_image(self.grid, self.output_path)
