"""DDP inside Hydra multiruns.

Lightning's DDP launcher re-executes the script for every extra process, with ``sys.argv`` and
``hydra.run.dir`` (Lightning issue 11300): inside a multirun each child would start the whole sweep again. The
launcher also leaves its rendezvous variables (``LOCAL_RANK`` ...) and the process group behind, so the next job
of the sweep would believe its processes were created externally and wait forever for children it never starts.
And it leaves a thread watching the job's children that kills the main process when one exits non-zero: after a
failed job, that would end the sweep in the middle of a later job.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig, read_write

# set during a job for its DDP children: Lightning's launcher variables, and the W&B mode the job resolved (left
# set, the next job of a multirun would take it for the user's WANDB_MODE and not probe the server again)
JOB_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE", "WANDB_MODE")
CHILD_EXIT_TIMEOUT_S = 60  # for a job's children to finish after rank 0 has (those of a failed job may hang)
# hydra.* settings of the sweep, not of its job; Lightning's launcher sets hydra.run.dir, hydra.job.name and
# hydra.output_subdir for the children itself
SWEEP_ONLY_HYDRA_KEYS = ("hydra.mode", "hydra.run", "hydra.sweep", "hydra.sweeper", "hydra/sweeper", "hydra.launcher",
                         "hydra/launcher", "hydra.job.name", "hydra.output_subdir")  # fmt: skip


JOBLIB_LAUNCHER = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"


def check_single_process_in_parallel_sweep(world_size: int) -> None:
    """Refuses DDP in a sweep whose jobs run side by side (``hydra/launcher=joblib``): a job there runs in a
    worker process that Lightning's launcher cannot re-execute, and its siblings would claim the same devices
    and rendezvous port."""
    if world_size > 1 and HydraConfig.initialized() and HydraConfig.get().launcher.get("_target_") == JOBLIB_LAUNCHER:
        raise ValueError(
            f"hydra/launcher=joblib runs a sweep's jobs side by side, one process each, but this trainer would start "
            f"{world_size} (trainer.devices x trainer.num_nodes): sweep DDP runs with the default launcher"
        )


def job_arguments(hydra_cfg: DictConfig) -> list[str]:
    """The command line that composes this job's config again, in single-run mode: ``--config-path``,
    ``--config-name`` and ``--config-dir``, the ``hydra.*`` overrides that shape a job (``hydra.searchpath``,
    ``hydra.job.chdir`` ...), then the job's own overrides."""
    sources = hydra_cfg.runtime.config_sources
    primary = next(source for source in sources if source.provider == "main")
    config_path = f"pkg://{primary.path}" if primary.schema == "pkg" else primary.path
    extra_dirs = [f"--config-dir={source.path}" for source in sources if source.provider == "command-line"]
    hydra_overrides = [
        override.input_line for override in OverridesParser.create().parse_overrides(list(hydra_cfg.overrides.hydra))
        if not any(f"{override.key_or_group}.".startswith(f"{key}.") for key in SWEEP_ONLY_HYDRA_KEYS)
    ]  # fmt: skip
    return [
        f"--config-path={config_path}", f"--config-name={hydra_cfg.job.config_name}", *extra_dirs, *hydra_overrides,
        *hydra_cfg.overrides.task,
    ]  # fmt: skip


def release_ddp_children() -> None:
    """Waits for the child processes Lightning's launcher started for this job (kills those that do not end) and
    retires the launcher's watcher thread (``child-process-observer``; an empty list of children ends it
    quietly), so that no child of this job can stop a later one."""
    for watcher in [thread for thread in threading.enumerate() if thread.name == "child-process-observer"]:
        children, watcher._child_processes = watcher._child_processes, []
        for child in children:
            try:
                child.wait(timeout=CHILD_EXIT_TIMEOUT_S)
            except subprocess.TimeoutExpired:  # e.g. waiting in a collective that rank 0 has left
                child.kill()
                child.wait()


@contextmanager
def ddp_ready_hydra_job() -> Iterator[None]:
    """Run one Hydra job so that DDP children re-run exactly this job, and leave no DDP state for the next."""
    saved_env = {name: os.environ.get(name) for name in JOB_ENV}
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    if multirun:
        # children re-run this job alone: its config and overrides, its own output directory, in single-run mode
        sys.argv = [sys.argv[0], *job_arguments(hydra_cfg)]
        with read_write(hydra_cfg):
            hydra_cfg.run.dir = hydra_cfg.runtime.output_dir
    try:
        yield
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        if multirun:
            release_ddp_children()
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
