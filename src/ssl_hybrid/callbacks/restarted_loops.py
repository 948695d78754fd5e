"""Lightning 2.6 restarts its training loop correctly from checkpoints saved where its own callbacks save them; a
checkpoint saved on an exception (``last.ckpt`` after Ctrl-C, SIGTERM or an error) can catch the loop where its
restart goes wrong in two ways. ``RestartedLoops`` corrects both."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl


class RestartedLoops(pl.Callback):
    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        # SIGTERM is acted on once an epoch has ended. The checkpoint would then hold the finished epoch's batch
        # progress, which a restart takes for the next epoch's: it ends that epoch at once, with no batches, and
        # every later epoch, with its samplers' order, runs one ahead. The next epoch's start would clear it.
        epochs = trainer.fit_loop.epoch_progress.current
        if epochs.completed == epochs.ready:
            trainer.fit_loop.epoch_loop.batch_progress.reset_on_run()

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        # The loggers' step counter equals global_step at the start of every step of a run never stopped (one
        # optimizer step per batch). A restart after a step that was stopped before it trained leaves it one
        # ahead: every logged step would be shifted, and the steps on which the module logs its training values
        # (SemiSupervisedModule.logs_this_step) would never be written.
        trainer.fit_loop.epoch_loop._batches_that_stepped = trainer.global_step
