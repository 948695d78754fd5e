"""Checks of settings that name their config key, so a wrong type or value fails with what to change
before any data is read, instead of a bare ``TypeError`` somewhere in training; the paths a user gives, and the
modules of their own that the entry points import (``imports``)."""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.utils import to_absolute_path
from omegaconf import DictConfig


def check_number(
    key: str,
    value: Any,
    *,
    integer: bool = False,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    below: float | None = None,
    nullable: bool = False,
) -> None:
    """Refuses ``value`` unless it is a finite number (an int with ``integer``; never a bool) within the given
    bounds, or None where ``nullable``."""
    if value is None and nullable:
        return
    bounds = {">=": at_least, ">": above, "<=": at_most, "<": below}
    is_number = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if is_number and (
        (at_least is None or value >= at_least)
        and (above is None or value > above)
        and (at_most is None or value <= at_most)
        and (below is None or value < below)
    ):
        return
    wanted = " and ".join(f"{op} {bound}" for op, bound in bounds.items() if bound is not None)
    kind = "an integer" if integer else "a number"
    raise ValueError(f"{key} must be {kind}{' ' + wanted if wanted else ''}{', or null' if nullable else ''}, got {value!r}")


def check_choice(key: str, value: Any, choices: Sequence[str], *, nullable: bool = False) -> None:
    """Refuses ``value`` unless it is one of ``choices``, or None where ``nullable``."""
    if value in choices or (value is None and nullable):
        return
    raise ValueError(f"{key} must be one of {tuple(choices)}{' or null' if nullable else ''}, got {value!r}")


def user_path(path: str | Path) -> Path:
    """A path from the command line, absolute: a relative one counts from the directory the command was launched
    in, also when ``hydra.job.chdir=true`` has moved the run into its run directory; ``~`` is expanded."""
    return Path(to_absolute_path(str(Path(path).expanduser())))


def import_user_modules(names: str | Sequence[str] | None) -> None:
    """Imports the modules that ``imports`` names: a user's own models, data readers (``SOURCES``) and timm
    backbones (``@register_model``) register themselves on import, and a checkpoint of their model is then found."""
    for name in [names] if isinstance(names, str) else names or []:
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise ImportError(
                f"imports: cannot import {name!r} ({type(error).__name__}: {error}); install its package, or put its "
                "folder on PYTHONPATH"
            ) from error


def check_trainer_settings(trainer: DictConfig) -> None:
    """Refuses what Lightning accepts but would train nothing (``max_steps`` 0) or crash on at the first
    validation (``val_check_interval`` 0), and lengths that are not integers, naming the key (Lightning's own
    error compares a str with an int)."""
    check_number("trainer.max_steps", trainer.get("max_steps"), integer=True, at_least=-1, nullable=True)
    if trainer.get("max_steps") == 0:
        raise ValueError("trainer.max_steps=0 trains nothing: give the number of steps (or -1 with trainer.max_epochs)")
    check_number("trainer.max_epochs", trainer.get("max_epochs"), integer=True, at_least=-1, nullable=True)
    check_number("trainer.log_every_n_steps", trainer.get("log_every_n_steps"), integer=True, at_least=0, nullable=True)
    check_number("trainer.val_check_interval", trainer.get("val_check_interval"), above=0, nullable=True)


def check_experiment_package(cfg: DictConfig) -> None:
    """Refuses an experiment file without its package header: its settings would land under ``experiment.*``,
    where nothing reads them, and the run would train the defaults without a word."""
    if "experiment" in cfg:
        raise ValueError(
            f"experiment={HydraConfig.get().runtime.choices.get('experiment')}: its settings landed under experiment.*, "
            "where nothing reads them: make `# @package _global_` the experiment file's first line"
        )
