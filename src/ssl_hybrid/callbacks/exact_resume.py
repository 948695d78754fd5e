"""Lightning 2.6 restarts its training loop correctly from checkpoints saved where its own callbacks save them; a
checkpoint saved on an exception (``last.ckpt`` after Ctrl-C, SIGTERM or an error) can catch its loops where their
restart goes wrong. ``ExactResume`` makes a run resumed from it draw, train and log as the uninterrupted run would:

- a batch handed out for a step that never trained is given back to its ``ResumableLoader``, to be trained on
  resuming, and is not counted towards when to validate;
- an epoch that had ended is not taken for the next one;
- a validation that was due at the step a checkpoint was saved after, but had not run, is run on resuming, not
  taken as done;
- the loggers' step counter is realigned with ``global_step``;
- the random number generators (augmentation, the VAE's noise) continue where the run's last trained step left them,
  from every checkpoint, not only that one, in a single process. Under DDP each process keeps the fresh streams
  of its own seed: a checkpoint is written by one process and cannot hold the others' states.

Validation during training hands the generators back as it found them (in every process), so what and how often a
run validates (``trainer.val_check_interval``, the sample grids) does not change how it trains.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerFn

from ssl_hybrid.data.sampling import ResumableLoader


def rng_states() -> dict[str, Any]:
    """Where Python's, NumPy's, torch's CPU and CUDA generators stand, in types a ``weights_only`` load accepts."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    states = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    # one state per GPU: a run resumed on another machine's GPUs starts theirs afresh
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


class ExactResume(pl.Callback):
    def __init__(self) -> None:
        self._next_step_rng: dict[str, Any] | None = None  # the generators as the next training step finds them
        self._restored_rng: dict[str, Any] | None = None  # from the checkpoint resumed from, until training starts

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self._next_step_rng} if self._next_step_rng is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored_rng = state_dict.get("rng")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # after the sanity check, whose draws the uninterrupted run did not make at this point
        if self._restored_rng is not None and trainer.world_size == 1:
            set_rng_states(self._restored_rng)
        self._restored_rng = None
        self._next_step_rng = rng_states()  # for a validation before the first step (one due on resuming)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        # Callbacks run before the module's hook and the checkpoint callbacks: a checkpoint saved from here on,
        # on an exception too, holds the generators as the next step will find them, not as a batch that was
        # drawn and augmented but never trained left them.
        self._next_step_rng = rng_states()

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A validation during fit after a batch that stepped the optimizer comes before the loggers' counter
        # moves on: it logs at global_step - 1, also when a restart runs it first
        epoch_loop = trainer.fit_loop.epoch_loop
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking and not epoch_loop._should_accumulate():
            epoch_loop._batches_that_stepped = trainer.global_step - 1

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Validation draws too: its loader's seed, the VAE's noise, the sample grids (this callback comes after
        # them in train.py's list). Lightning isolates the sanity check's draws itself.
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
            set_rng_states(self._next_step_rng)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        # Lightning calls callbacks' on_exception before the checkpoint callbacks' own, which save last.ckpt.
        # A batch handed out for a step the exception stopped (Ctrl-C, an error) was never trained: the checkpoint
        # must not count it as drawn. Read before the reset below changes the batch progress.
        batches = trainer.fit_loop.epoch_loop.batch_progress
        untrained = batches.current.ready - batches.current.processed  # processed: its optimizer step has run
        for loader in (trainer.train_dataloader or {}).values():
            if isinstance(loader, ResumableLoader):
                loader.batches_handed_out -= untrained
        # nor as counted: Lightning's restart resets the epoch's count but not the run's total, which paces
        # validation (trainer.val_check_interval), so a resumed run would validate a step early
        batches.total.ready -= untrained
        batches.total.started = min(batches.total.started, batches.total.ready)
        # SIGTERM is acted on once an epoch has ended. The checkpoint would then hold the finished epoch's batch
        # progress, which a restart takes for the next epoch's: it ends that epoch at once, with no batches, and
        # every later epoch, with its samplers' order, runs one ahead. The next epoch's start would clear it.
        epochs = trainer.fit_loop.epoch_progress.current
        if epochs.completed == epochs.ready:
            batches.reset_on_run()

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        # A checkpoint saved after a step trained but before the validation due at that step ran (in
        # on_train_batch_end: a ModelCheckpoint(every_n_train_steps), or last.ckpt on a stop there): Lightning's
        # restart would take that validation as run and skip it. Recorded as a validation stopped at its first
        # batch, it is run on restarting, as it would have been.
        batches = trainer.fit_loop.epoch_loop.batch_progress.current
        trained_not_ended = batches.ready == batches.processed == batches.completed + 1
        if trainer.validating or trainer.sanity_checking or not trained_not_ended:
            return
        if trainer.fit_loop.epoch_loop._should_check_val_fx(trainer.fit_loop._data_fetcher):
            validation = checkpoint["loops"]["fit_loop"]["epoch_loop.val_loop.batch_progress"]
            validation["total"]["ready"] += 1
            validation["total"]["started"] += 1
            validation["current"] = {"ready": 1, "started": 1, "processed": 0, "completed": 0}

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        # The loggers' step counter equals global_step at the start of every step of a run never stopped (one
        # optimizer step per batch). A restart after a step that was stopped before it trained leaves it one
        # ahead: every logged step would be shifted, and the steps on which the module logs its training values
        # (SemiSupervisedModule.logs_this_step) would never be written.
        trainer.fit_loop.epoch_loop._batches_that_stepped = trainer.global_step
