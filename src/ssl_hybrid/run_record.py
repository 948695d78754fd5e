"""What every checkpoint records of the run that wrote it (:class:`RunRecord`), and what the record is for.

The record holds the settings that make the run that run (model, data and seed), the ``.hydra`` files of its
directory and its W&B run id. It serves:

- resuming (``ckpt_path=``): Hydra rewrites a run directory's ``.hydra`` files before the run starts, so a resume
  in place (``hydra.run.dir`` = the checkpoint's run) with other settings would leave the directory describing a
  run that never happened, and Lightning would then fail on the weights or quietly train on with the new
  settings. :func:`check_resume` refuses such a resume before anything else is written, puts the ``.hydra`` files
  back and names the overrides to repeat. A resume in place continues the run's W&B run; a resume elsewhere
  starts a new run, and only warns when its settings differ;
- a checkpoint on its own: :func:`run_hydra_files` finds the run's config without its directory
  (``ssl-hybrid-sample`` reads the run's test images with it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_only

from ssl_hybrid.checkpoint_io import read_checkpoint
from ssl_hybrid.run_summary import flatten

log = logging.getLogger(__name__)

RUN_RECORD_KEY = "ssl_hybrid_run"
# how the data is read, not which data: a resumed run may change these
DATA_ACCESS_KEYS = {"data.root", "data.download", "data.num_workers", "data.eval_batch_size"}
# the overrides that choose them (experiment configs set model and data)
SETTING_GROUPS = {"model", "data", "seed", "experiment"}
# Lightning's own names for a checkpoint to resume from (Trainer.fit's ckpt_path), not files
LIGHTNING_CKPT_NAMES = {"last", "hpc", "registry"}


def names_a_file(ckpt_path: Any) -> bool:
    """Whether ``ckpt_path`` is a checkpoint file's path rather than one of Lightning's names (``last``,
    ``registry:...``) or unset."""
    return bool(ckpt_path) and str(ckpt_path).partition(":")[0] not in LIGHTNING_CKPT_NAMES


def run_settings(cfg: DictConfig) -> dict[str, Any]:
    """The settings a run keeps when it is resumed, resolved, as dotted keys."""
    # each section resolved in place: its interpolations may point anywhere in the config (${paths.data_dir})
    sections = {name: OmegaConf.to_container(cfg[name], resolve=True) for name in ("model", "data")}
    flat = flatten({**sections, "seed": cfg.seed})
    return {key: value for key, value in flat.items() if key not in DATA_ACCESS_KEYS}


def _override_key(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def _hydra_files(output_dir: Path) -> dict[str, str]:
    hydra_dir = output_dir / ".hydra"
    return {path.name: path.read_text() for path in sorted(hydra_dir.glob("*.yaml"))} if hydra_dir.is_dir() else {}


class RunRecord(Callback):
    """Stores the run's settings, ``.hydra`` files (as written when it started) and W&B run id in each
    checkpoint, under :data:`RUN_RECORD_KEY`."""

    def __init__(self, cfg: DictConfig) -> None:
        self.settings = run_settings(cfg)
        self.hydra_files = _hydra_files(Path(cfg.paths.output_dir))

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        wandb_ids = [logger.version for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        checkpoint[RUN_RECORD_KEY] = {
            "settings": self.settings,
            "hydra_files": self.hydra_files,
            "wandb_run_id": wandb_ids[0] if wandb_ids else None,
        }


def read_run_record(ckpt_path: Path) -> dict[str, Any] | None:
    return read_checkpoint(ckpt_path).get(RUN_RECORD_KEY)


def run_hydra_files(ckpt_path: Path) -> dict[str, str]:
    """The ``.hydra`` files of the run that wrote ``ckpt_path`` (``<run>/checkpoints/*.ckpt``): beside it, else as
    the checkpoint recorded them; empty if neither has them."""
    beside = _hydra_files(ckpt_path.parent.parent)
    return beside or (read_run_record(ckpt_path) or {}).get("hydra_files", {})


def check_resume(cfg: DictConfig) -> str | None:
    """Checks ``cfg.ckpt_path`` against the run that wrote it; returns the W&B run id to continue (a resume in
    place), else None. Raises before anything is written when the checkpoint is missing, or when a resume in
    place would change the run's settings."""
    ckpt_path = cfg.get("ckpt_path")
    if not names_a_file(ckpt_path):
        return None
    ckpt_path = Path(ckpt_path).expanduser().resolve()
    output_dir = Path(cfg.paths.output_dir).resolve()
    try:
        record = read_run_record(ckpt_path)
    except (FileNotFoundError, ValueError) as error:
        # e.g. a mistyped checkpoint name with hydra.run.dir set to its run: that run's .hydra files go back too
        files = _recorded_hydra_files(output_dir)
        _restore_hydra_files(output_dir, files)
        restored = f"\n(the .hydra files of the run in {output_dir}, which Hydra had just replaced, are restored)"
        raise type(error)(f"ckpt_path: {error}" + (restored if files else "")) from error
    warn_if_resuming_elsewhere(cfg, ckpt_path)
    if record is None:  # a checkpoint from before runs recorded themselves
        return None
    in_place = ckpt_path.parent.parent == output_dir
    saved, now = record["settings"], run_settings(cfg)
    changed = [
        f"{key}: {saved.get(key, '<unset>')} (this command: {now.get(key, '<unset>')})"
        for key in sorted(saved.keys() | now.keys())
        if saved.get(key, "<unset>") != now.get(key, "<unset>")
    ]
    if changed and in_place:
        _restore_hydra_files(output_dir, record["hydra_files"])
        overrides = OmegaConf.create(record["hydra_files"].get("overrides.yaml", "[]"))
        repeat = " ".join(o for o in overrides if _override_key(o).partition(".")[0] in SETTING_GROUPS) or "none"
        raise ValueError(
            f"ckpt_path: {ckpt_path} belongs to a run with other settings, which a resume in place keeps:\n  "
            + "\n  ".join(changed)
            + f"\nRepeat the run's own model, data and seed overrides: {repeat}"
            + ("\n(its .hydra files, which Hydra had just replaced, are restored)" if record["hydra_files"] else "")
        )
    if changed:
        log.warning("resuming %s with other settings than its run's:\n  %s", ckpt_path, "\n  ".join(changed))
    return record["wandb_run_id"] if in_place else None


def warn_if_resuming_elsewhere(cfg: DictConfig, ckpt_path: Path) -> None:
    """Lightning restores the best score so far only when the resumed run checkpoints into the same folder;
    elsewhere, the first validation after resuming would become best.ckpt, however it compares."""
    checkpoints = OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath")
    if checkpoints and ckpt_path.parent != Path(checkpoints).resolve():
        log.warning(
            "resuming %s into another run directory: the best validation score so far is not carried over, so "
            "best.ckpt and val/acc_best will cover only the resumed steps; to continue the run in place, add "
            "hydra.run.dir=%s", ckpt_path, ckpt_path.parent.parent,
        )  # fmt: skip


def _recorded_hydra_files(run_dir: Path) -> dict[str, str]:
    """The ``.hydra`` files as recorded by the newest readable checkpoint of the run in ``run_dir``; empty for a
    directory without one."""
    for ckpt_path in sorted((run_dir / "checkpoints").glob("*.ckpt"), key=lambda path: path.stat().st_mtime, reverse=True):
        try:
            record = read_run_record(ckpt_path)
        except (FileNotFoundError, ValueError):
            continue
        if record is not None:
            return record["hydra_files"]
    return {}


@rank_zero_only
def _restore_hydra_files(output_dir: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (output_dir / ".hydra" / name).write_text(text)
