"""Shows what the generative branch has learned: reconstructions of validation images, and samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger
from torchvision.utils import save_image

from ssl_hybrid.plots import comparison_grid, samples_grid
from ssl_hybrid.settings import check_number


class GenerativeGrids(pl.Callback):
    """Every ``every_n_validations`` validations, logs two grids to W&B: ``val/reconstructions`` (the first
    validation images above their reconstructions) and ``val/samples`` (decoded from the prior; one column per
    class for class-conditional models), and writes them to ``reconstructions.png`` and ``samples.png`` in the
    run directory, so a run that stops early keeps its latest ones."""

    def __init__(self, output_dir: str, num_images: int = 32, every_n_validations: int = 1) -> None:
        check_number("callbacks.generative_grids.num_images", num_images, integer=True, at_least=1)
        check_number("callbacks.generative_grids.every_n_validations", every_n_validations, integer=True, at_least=1)
        self.output_dir = Path(output_dir)
        self.num_images, self.every_n_validations = num_images, every_n_validations
        self.images: torch.Tensor | None = None
        self.validations = 0

    def state_dict(self) -> dict[str, Any]:
        # the count decides at which validations the grids draw from the random generators: a resumed run
        # draws where the uninterrupted run did
        return {"validations": self.validations}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.validations = state_dict.get("validations", 0)

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
        grids = {
            "reconstructions": comparison_grid(self.images, pl_module.reconstruct(self.images)),
            "samples": samples_grid(pl_module.sample(self.num_images), pl_module.vae.num_classes),
        }
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for name, grid in grids.items():
            save_image(grid, self.output_dir / f"{name}.png")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                for name, grid in grids.items():
                    logger.log_image(f"val/{name}", [grid], step=trainer.global_step)
