"""Experiment loggers. W&B goes offline by itself when no credentials are configured or its server cannot be
reached, so a run never prompts for a login or hangs on an unreachable server."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from hydra.utils import get_object, instantiate
from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger, WandbLogger

from ssl_hybrid.settings import check_choice
from ssl_hybrid.wandb_server import wandb_base_url, wandb_credentials_configured, wandb_server_answers

log = logging.getLogger(__name__)


def resolve_wandb_mode() -> str:
    """``WANDB_MODE`` when set; else ``online`` with credentials and a reachable server, ``offline`` otherwise."""
    if mode := os.environ.get("WANDB_MODE"):
        return mode
    if not wandb_credentials_configured():
        return "offline"
    if not wandb_server_answers():
        log.warning(
            "W&B credentials are set, but %s cannot be reached: logging offline (`wandb sync` uploads the run "
            "later; WANDB_MODE=online insists)", wandb_base_url(),
        )  # fmt: skip
        return "offline"
    return "online"


def sweep_group() -> str | None:
    """The name of the Hydra sweep directory this job runs in, or None outside a multirun."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return Path(HydraConfig.get().sweep.dir).name  # not the job folder's parent: hydra.sweep.subdir may nest


WANDB_MODES = ("online", "offline", "disabled")


def wandb_logger(
    save_dir: str, group: str | None = None, mode: str | None = None, init_timeout: float = 60.0, **kwargs: Any
) -> WandbLogger:
    """A ``WandbLogger`` whose mode is ``mode`` if given, else resolved up front (``resolve_wandb_mode``). The
    runs of one sweep share a group: ``group``, else W&B's own ``WANDB_RUN_GROUP`` (one group for several sweeps,
    whichever logger the command line picks), else the sweep directory's name. Online runs give up after
    ``init_timeout`` seconds instead of waiting on an unreachable server."""
    check_choice("logger.wandb.mode", mode, WANDB_MODES, nullable=True)
    if "offline" in kwargs:  # Lightning's own switch, which a user of WandbLogger may reach for
        raise ValueError("set logger.wandb.mode=offline (or online, disabled) rather than logger.wandb.offline")
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    kwargs["group"] = group or os.environ.get("WANDB_RUN_GROUP") or sweep_group()
    mode = mode or resolve_wandb_mode()
    os.environ["WANDB_MODE"] = mode  # the DDP child processes and wandb's own service read the same mode
    import wandb

    return WandbLogger(
        save_dir=save_dir, offline=mode == "offline", mode=mode, settings=wandb.Settings(init_timeout=init_timeout), **kwargs
    )


def instantiate_loggers(group: DictConfig | None, wandb_run_id: str | None = None) -> list[Logger]:
    """The loggers of the ``logger`` config group; a W&B logger continues the W&B run ``wandb_run_id`` if one is
    given (a run resumed in place)."""
    loggers = []
    for node in (group or {}).values():
        if node is not None:
            target = get_object(node._target_)
            is_wandb = target is wandb_logger or (isinstance(target, type) and issubclass(target, WandbLogger))
            loggers.append(instantiate(node, **({"id": wandb_run_id} if is_wandb and wandb_run_id else {})))
    return loggers
