"""scripts/benchmark.py runs end to end and writes the agreed JSON (its figures are not asserted: they are timings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "benchmark.py"
KEYS = {"stack_images_per_s", "bare_images_per_s", "ratio", "dataloader_images_per_s", "peak_rss_mb"}


def test_benchmark_writes_its_json(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--configs", "digits", "--steps", "8", "--warmup", "2", "--rounds", "1",
         "--json", str(out), "--config-overrides", "data.batch_size=16"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads(out.read_text())
    assert set(results) == {"digits"} and set(results["digits"]) == KEYS
    assert all(value > 0 for value in results["digits"].values())
    assert "digits: stack" in result.stdout
