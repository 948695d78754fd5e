"""Experiment loggers. W&B goes offline by itself when no credentials are configured or its server cannot be
reached, so a run never prompts for a login or hangs on an unreachable server."""

from __future__ import annotations

import logging
import netrc
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from hydra.utils import get_object, instantiate
from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger, WandbLogger

from ssl_hybrid.settings import check_choice

log = logging.getLogger(__name__)
# W&B's cloud API: wandb 0.31's default host, and the one before it, which `wandb login` may have written
WANDB_CLOUD_HOSTS = ("api.forge.coreweave.com", "api.wandb.ai")
SERVER_PROBE_TIMEOUT_S = 5.0


def wandb_base_url() -> str:
    return os.environ.get("WANDB_BASE_URL") or f"https://{WANDB_CLOUD_HOSTS[0]}"


def wandb_hosts() -> tuple[str, ...]:
    """The hosts whose ``~/.netrc`` entry counts: the server of ``WANDB_BASE_URL``, else both cloud hosts."""
    return (urlparse(wandb_base_url()).hostname,) if os.environ.get("WANDB_BASE_URL") else WANDB_CLOUD_HOSTS


def wandb_credentials_configured() -> bool:
    """True when ``WANDB_API_KEY`` is set or ``~/.netrc`` (``$NETRC``) holds a key for the W&B host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return path.is_file() and any(netrc.netrc(path).authenticators(host) is not None for host in wandb_hosts())
    except (netrc.NetrcParseError, OSError):
        return False


def wandb_server_reachable(host: str, port: int = 443) -> bool:
    """Whether a TCP connection to the W&B server opens within a few seconds (wandb itself waits a minute or more
    before failing the run)."""
    try:
        with socket.create_connection((host, port), timeout=SERVER_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def resolve_wandb_mode() -> str:
    """``WANDB_MODE`` when set; else ``online`` with credentials and a reachable server, ``offline`` otherwise."""
    if mode := os.environ.get("WANDB_MODE"):
        return mode
    if not wandb_credentials_configured():
        return "offline"
    url = urlparse(wandb_base_url())
    if not wandb_server_reachable(url.hostname, url.port or (80 if url.scheme == "http" else 443)):
        log.warning(
            "W&B credentials are set, but %s cannot be reached: logging offline (`wandb sync` uploads the run "
            "later; WANDB_MODE=online insists)", url.geturl(),
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
