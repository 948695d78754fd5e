"""``last.ckpt``: the latest training state, to resume from.

Lightning 2.6's ``ModelCheckpoint(save_last=True)`` next to a monitored metric refreshes ``last.ckpt`` only when
the metric improves, so resuming from it could repeat hundreds of steps. This one saves at every validation, when
training ends between two validations, and on an exception or Ctrl-C (under DDP, only on SIGTERM: see
``on_exception``).
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException


class LatestCheckpoint(ModelCheckpoint):
    def __init__(self, dirpath: str | Path, filename: str = "last") -> None:
        super().__init__(dirpath=dirpath, filename=filename, save_top_k=1, save_on_exception=True, enable_version_counter=False)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._should_skip_saving_checkpoint(trainer):  # skipped when this step is already saved
            self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        # Saving waits for every process. Lightning stops all of them together on SIGTERM; an error in one process,
        # or a signal that reaches only one, would leave the saving process waiting for the others forever.
        if trainer.world_size == 1 or isinstance(exception, SIGTERMException):
            super().on_exception(trainer, pl_module, exception)
