"""Lightning 2.6 restarts its training loop correctly from checkpoints saved where its own callbacks save them; a
checkpoint saved on an exception (``last.ckpt`` after Ctrl-C, SIGTERM or an error) can catch its loops where their
restart goes wrong. ``ExactResume`` makes a run resumed from it draw and log as the uninterrupted run would:

- a batch handed out for a step that never trained is given back to its ``ResumableLoader``, to be trained on resuming;
- an epoch that had ended is not taken for the next one;
- the loggers' step counter is realigned with ``global_step``.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

from ssl_hybrid.data.sampling import ResumableLoader


class ExactResume(pl.Callback):
    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        # Lightning calls callbacks' on_exception before the checkpoint callbacks' own, which save last.ckpt.
        # A batch handed out for a step the exception stopped (Ctrl-C, an error) was never trained: the checkpoint
        # must not count it as drawn. Read before the reset below changes the batch progress.
        batches = trainer.fit_loop.epoch_loop.batch_progress
        untrained = batches.current.ready - batches.current.processed  # processed: its optimizer step has run
        for loader in (trainer.train_dataloader or {}).values():
            if isinstance(loader, ResumableLoader):
                loader.batches_handed_out -= untrained
        # SIGTERM is acted on once an epoch has ended. The checkpoint would then hold the finished epoch's batch
        # progress, which a restart takes for the next epoch's: it ends that epoch at once, with no batches, and
        # every later epoch, with its samplers' order, runs one ahead. The next epoch's start would clear it.
        epochs = trainer.fit_loop.epoch_progress.current
        if epochs.completed == epochs.ready:
            batches.reset_on_run()

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        # The loggers' step counter equals global_step at the start of every step of a run never stopped (one
        # optimizer step per batch). A restart after a step that was stopped before it trained leaves it one
        # ahead: every logged step would be shifted, and the steps on which the module logs its training values
        # (SemiSupervisedModule.logs_this_step) would never be written.
        trainer.fit_loop.epoch_loop._batches_that_stepped = trainer.global_step
