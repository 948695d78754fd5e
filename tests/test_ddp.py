"""Multi-process training on CPU (gloo), inside a Hydra multirun: the case Lightning issue 11300 breaks."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import QUICK, run_quick_sweep
from ssl_hybrid.run_summary import read_summary


def test_ddp_inside_a_multirun_runs_each_job_once(tmp_path):
    # an experiment from a --config-dir of the user's own, which the child processes must find as well
    (tmp_path / "my_conf" / "experiment").mkdir(parents=True)
    (tmp_path / "my_conf" / "experiment" / "mine.yaml").write_text("# @package _global_\ndata:\n  split_seed: 2\n")
    extra = (f"--config-dir={tmp_path / 'my_conf'}", "experiment=mine")
    sweep = run_quick_sweep(tmp_path, *extra, "model.alpha=1.0,0.9", "trainer=ddp_cpu")
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    assert not (tmp_path / "logs").exists()  # no child fell back to a run directory of its own
    summaries = [read_summary(sweep / job) for job in ("0", "1")]
    assert [(s["alpha"], s["split_seed"]) for s in summaries] == [(1.0, 2), (0.9, 2)]
    assert all(s["status"] == "completed" and s["global_step"] == 10 for s in summaries)


def test_a_failed_ddp_job_does_not_stop_the_rest_of_the_sweep(tmp_path):
    # job 0 fails on every rank once the processes run (the consistency term without strong views is refused in
    # setup); its children exit non-zero while job 1 runs
    sweep = tmp_path / "sweep"
    result = subprocess.run(
        [sys.executable, "-m", "ssl_hybrid.train", "-m", "model.consistency_weight=1.0,0.0", "trainer=ddp_cpu", *QUICK,
         "trainer.max_steps=10", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env={**os.environ, "WANDB_MODE": "offline"}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]  # Hydra reports the failed job at the end, no SIGKILL
    assert read_summary(sweep / "0")["status"] == "failed" and "strong_transforms" in read_summary(sweep / "0")["error"]
    assert read_summary(sweep / "1")["status"] == "completed" and read_summary(sweep / "1")["global_step"] == 10
