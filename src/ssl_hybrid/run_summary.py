"""The run's own summary, ``metrics.json``: one flat JSON object per run directory that other tooling reads
(offline W&B runs write no summary of their own). Written on success, interruption and failure alike."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

SUMMARY_FILE = "metrics.json"
LABELED_INDICES_FILE = "labeled_indices.json"
# Always present, null when unknown: test/nelbo_bpd is null when the generative branch is off.
REQUIRED_METRICS = ("test/acc", "test/nelbo_bpd", "val/acc_best")


def plain_metrics(metrics: Mapping[str, Any]) -> dict[str, float | None]:
    """The epoch-level ``train/``, ``val/`` and ``test/`` metrics as floats; NaN and inf become None so the
    JSON stays standard. Per-step duplicates (``*_step``, ``*_epoch``) and learning rates are left out."""
    out = {}
    for key, value in metrics.items():
        if not key.startswith(("train/", "val/", "test/")) or key.endswith(("_step", "_epoch")):
            continue
        number = float(value.item() if isinstance(value, torch.Tensor) else value)
        out[key] = number if math.isfinite(number) else None
    return out


def write_json(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write atomically, so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def read_summary(run_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / SUMMARY_FILE).read_text())
