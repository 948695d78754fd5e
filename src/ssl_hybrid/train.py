"""``ssl-hybrid-train``: compose the config, instantiate data, model, callbacks, loggers and trainer, fit,
test the best checkpoint, and write the run summary (``metrics.json``) into the Hydra run directory."""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import LearningRateMonitor, Timer, WeightAveraging
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities.rank_zero import rank_zero_only

import ssl_hybrid
from ssl_hybrid.callbacks import ExactResume
from ssl_hybrid.hydra_ddp import check_single_process_in_parallel_sweep, ddp_ready_hydra_job
from ssl_hybrid.loggers import instantiate_loggers
from ssl_hybrid.models.backbones import without_pretrained_weights
from ssl_hybrid.run_record import RunRecord, check_resume, names_a_file
from ssl_hybrid.run_summary import (
    LABELED_INDICES_FILE, REQUIRED_METRICS, SUMMARY_FILE, plain_metrics, run_facts, training_progress, write_json,
)  # fmt: skip
from ssl_hybrid.settings import (
    check_experiment_package, check_number, check_trainer_settings, import_user_modules, user_path,
)  # fmt: skip

log = logging.getLogger(__name__)
# A run's clock (startup_seconds, wall_seconds) starts at the package import for the first run of a process, at
# the call to train() for the later runs of a multirun.
_unclaimed_import_time = [ssl_hybrid.IMPORTED_AT]


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """The objects of a config group that maps names to ``_target_`` configs (the callbacks)."""
    return [instantiate(node) for node in (group or {}).values() if node is not None]


def from_launch_dir(cfg: DictConfig) -> None:
    """Makes the paths a user gives (``ckpt_path``, ``data.root``) absolute (``user_path``)."""
    with open_dict(cfg):
        if names_a_file(cfg.get("ckpt_path")):
            cfg.ckpt_path = str(user_path(cfg.ckpt_path))
        if cfg.data.get("root"):
            cfg.data.root = str(user_path(cfg.data.root))


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit and test one model; returns the run summary that is also written to ``metrics.json``."""
    output_dir = Path(cfg.paths.output_dir)
    summary: dict[str, Any] = {
        **dict.fromkeys(REQUIRED_METRICS), "best_checkpoint": None, **run_facts(cfg), "status": "failed"
    }  # fmt: skip
    from_launch_dir(cfg)
    wandb_run_id = check_resume(cfg)  # before the run writes anything: a refused resume in place leaves its run as it was
    trainer: pl.Trainer | None = None
    in_training = False
    started = _unclaimed_import_time.pop() if _unclaimed_import_time else time.monotonic()
    try:
        import_user_modules(cfg.get("imports"))
        check_experiment_package(cfg)
        check_trainer_settings(cfg.trainer)
        check_number("seed", cfg.seed, integer=True, at_least=0, at_most=2**32 - 1)  # numpy's seed range
        pl.seed_everything(cfg.seed, workers=True)
        datamodule = instantiate(cfg.data, _convert_="all")
        model_cfg = cfg.model.copy()
        if cfg.get("ckpt_path"):  # its weights replace the backbone's: no pretrained ones to fetch
            model_cfg.backbone = without_pretrained_weights(OmegaConf.to_container(cfg.model.backbone, resolve=True))
        model = instantiate(
            model_cfg, num_classes=datamodule.num_classes, image_shape=list(datamodule.image_shape), _convert_="all"
        )
        summary["objective"] = model.objective
        summary["likelihood"] = model.likelihood_name  # model.likelihood=auto as resolved for the data's channels
        timer = Timer()
        callbacks = [*instantiate_group(cfg.get("callbacks")), timer, RunRecord(cfg), ExactResume()]
        loggers = instantiate_loggers(cfg.get("logger"), wandb_run_id)
        if not loggers and any(isinstance(callback, LearningRateMonitor) for callback in callbacks):
            raise ValueError("no logger, but callbacks.learning_rate (Lightning's LearningRateMonitor) needs one: logger=none drops both")
        trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
        check_single_process_in_parallel_sweep(trainer.world_size)
        # Lightning reads a process's rank from the environment at import: a LOCAL_RANK or SLURM_PROCID left over
        # from torchrun or `srun -n N` made a single-process run rank 1, whose loggers write nothing
        rank_zero_only.rank = trainer.global_rank
        if trainer.is_global_zero:
            write_json(output_dir / LABELED_INDICES_FILE, datamodule.split_record())
        for logger in trainer.loggers:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

        if datamodule.num_val_images == 0:
            log.warning("data.val_per_class=0: no validation images, so no best checkpoint; the final weights are tested")
        in_training = True
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        in_training = False
        summary.update(training_progress(trainer, timer, datamodule.images_per_step, started))
        # however the run's length was set (max_steps, max_epochs, max_time), it may have ended before a validation
        if datamodule.num_val_images > 0 and "val/acc" not in trainer.callback_metrics and not cfg.get("ckpt_path"):
            log.warning(
                "no validation in the run's %d steps (trainer.val_check_interval=%s), so no best checkpoint; the "
                "final weights are tested", trainer.global_step, trainer.val_check_interval,
            )  # fmt: skip
        if cfg.get("test"):
            # Lightning's WeightAveraging (EMA weights) would load a checkpoint's current weights into the model,
            # not the averaged ones in its state_dict, which validation scored and chose it by: it sits out the test
            trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, WeightAveraging)]
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Be aware that when using `ckpt_path`, callbacks")
                (test_metrics,) = trainer.test(model, datamodule=datamodule, ckpt_path=summary.get("best_checkpoint"))
            summary.update(plain_metrics(test_metrics))
            # e.g. a learning rate so high that the BatchNorm statistics overflow: chance accuracy, a NaN NELBO
            if nonfinite := [key for key, value in test_metrics.items() if not math.isfinite(value)]:
                raise FloatingPointError(
                    f"the run diverged: {', '.join(nonfinite)} of the tested model are not finite (a lower "
                    "model.optimizer.lr may help)"
                )
        summary["status"] = "completed"
        return summary
    except BaseException as error:
        # Lightning answers Ctrl-C with a graceful shutdown, then sys.exit(1) (a KeyboardInterrupt before training),
        # and SIGTERM with an exception, or under DDP a rank's error once SIGTERM's handler has stopped the others
        terminated = trainer is not None and trainer.received_sigterm
        interrupted = terminated or isinstance(error, (KeyboardInterrupt, SystemExit))
        summary["status"] = "interrupted" if interrupted else "failed"
        summary["error"] = "stopped by Ctrl-C or a signal" if interrupted else f"{type(error).__name__}: {error}"
        log.error("run %s: %s", summary["status"], summary["error"])
        if in_training:  # record how far it got, without masking the error itself
            with contextlib.suppress(Exception):
                summary.update(training_progress(trainer, timer, datamodule.images_per_step, started))
        if terminated:  # Lightning's SIGTERMException exits 0, which schedulers and `&&` read as success
            raise SystemExit(128 + signal.SIGTERM) from error
        raise
    finally:
        summary["wall_seconds"] = time.monotonic() - started
        if trainer is None or trainer.is_global_zero:
            write_json(output_dir / SUMMARY_FILE, summary)
            log.info("run summary: %s", output_dir / SUMMARY_FILE)
        for logger in trainer.loggers if trainer is not None else []:
            if isinstance(logger, WandbLogger) and logger._experiment is not None:
                logger.experiment.summary.update({k: v for k, v in summary.items() if v is not None})
                # the next job of a multirun starts a fresh W&B run; a failed or interrupted one shows as such
                logger.experiment.finish(exit_code=0 if summary["status"] == "completed" else 1)


@hydra.main(version_base="1.3", config_path="pkg://ssl_hybrid.conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Returns the validation accuracy as the test scored it (``val/acc_as_tested``; ``val/acc_best`` without a
    test) for Hydra sweepers that optimise (e.g. Optuna): settings chosen by the test accuracy would make it a
    fitted number rather than a test."""
    with ddp_ready_hydra_job():
        summary = train(cfg)
    return next((summary[key] for key in ("val/acc_as_tested", "val/acc_best") if summary.get(key) is not None), None)


if __name__ == "__main__":
    main()
