"""scripts/benchmark.py runs end to end and writes the agreed JSON (its figures are not asserted: they are timings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "benchmark.py"
KEYS = {"stack_images_per_s", "bare_images_per_s", "ratio", "dataloader_images_per_s", "peak_rss_mb"}


def test_benchmark_writes_its_json(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--configs", "digits", "--steps", "8", "--warmup", "2", "--rounds", "1",
         "--json", str(out), "--config-overrides", "data.batch_size=16", "--scale", "data.unlabeled_ratio=0,2",
         "--profile"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads(out.read_text())
    assert set(results) == {"digits", "digits data.unlabeled_ratio=0", "digits data.unlabeled_ratio=2"}
    assert all(set(r) == KEYS and all(value > 0 for value in r.values()) for r in results.values())
    assert "digits: stack" in result.stdout and "training_step" in result.stdout  # the profile


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--configs", "digitz"], "invalid choice: 'digitz'"),
        (["--steps", "5", "--warmup", "5"], "must exceed --warmup"),
        (["--rounds", "0"], "must be at least 1"),
        (["--scale", "data.unlabeled_ratio"], "KEY=V1,V2"),
    ],
)
def test_benchmark_refuses_bad_arguments(args, message):
    result = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
