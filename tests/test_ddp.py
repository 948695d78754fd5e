"""Multi-process training on CPU (gloo), inside a Hydra multirun: the case Lightning issue 11300 breaks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import ssl_hybrid.conf
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


FAIL_ON_RANK = """
import pytorch_lightning as pl

class FailOnRank(pl.Callback):
    def __init__(self, rank):
        self.rank = rank

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_rank == self.rank and trainer.global_step == 5:
            raise RuntimeError(f"failed on rank {self.rank}")
"""


def test_an_error_in_one_ddp_process_fails_its_job_instead_of_hanging_it(tmp_path):
    # an exception-time checkpoint would wait for the process that goes on training
    (tmp_path / "fail_on_rank.py").write_text(FAIL_ON_RANK)
    sweep = tmp_path / "sweep"
    result = subprocess.run(
        [sys.executable, "-m", "ssl_hybrid.train", "-m", "trainer=ddp_cpu", *QUICK, "trainer.max_steps=10",
         "+callbacks.fail._target_=fail_on_rank.FailOnRank", "+callbacks.fail.rank=1,0", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    on_rank_1, on_rank_0 = (read_summary(sweep / job) for job in ("0", "1"))
    assert on_rank_1["status"] == on_rank_0["status"] == "failed" and on_rank_0["error"] == "RuntimeError: failed on rank 0"
    # job 0's metrics.json has what rank 0 saw, the lost peer; rank 1's own error is in its log
    assert "failed on rank 1" in (sweep / "0" / "train_ddp_process_1.log").read_text()


# Runs a sweep whose jobs record their config and the command Lightning's DDP launcher would start a child with
# (its own private helper, so the test follows Lightning), then that child, which records its config. No training.
CHILD_PROBE = """
import json, os, subprocess, sys
from hydra.core.hydra_config import HydraConfig
from lightning_fabric.strategies.launchers.subprocess_script import _hydra_subprocess_cmd
from omegaconf import OmegaConf
import ssl_hybrid.train

def record(cfg):
    role = "job" if HydraConfig.get().mode.name == "MULTIRUN" else "child"
    seen = {"config": OmegaConf.to_container(cfg, resolve=True), "cwd": os.getcwd()}
    with open(os.path.join(os.environ["PROBE_DIR"], role + ".json"), "w") as file:
        json.dump(seen, file)
    if role == "job":
        command, cwd = _hydra_subprocess_cmd(local_rank=1)
        subprocess.run(command, cwd=cwd, check=True)
    return {}

ssl_hybrid.train.train = record
ssl_hybrid.train.main()
"""


def test_ddp_children_compose_the_config_of_their_job(tmp_path):
    # a primary config of the user's own (--config-path), an experiment on an extra search path (hydra.searchpath)
    # and a job that runs in its output directory (hydra.job.chdir): each changes what a child would compose
    own_conf = tmp_path / "own_conf"
    shutil.copytree(Path(ssl_hybrid.conf.__file__).parent, own_conf)
    (own_conf / "train.yaml").write_text((own_conf / "train.yaml").read_text().replace("seed: 0", "seed: 123"))
    (tmp_path / "extra" / "experiment").mkdir(parents=True)
    (tmp_path / "extra" / "experiment" / "mine.yaml").write_text("# @package _global_\ndata:\n  split_seed: 2\n")
    (tmp_path / "probe.py").write_text(CHILD_PROBE)
    command = [
        sys.executable, "probe.py", "-m", f"--config-path={own_conf}", f"hydra.searchpath=[file://{tmp_path / 'extra'}]",
        "hydra.job.chdir=true", f"hydra.sweep.dir={tmp_path / 'sweep'}", "experiment=mine", "model.alpha=0.5",
    ]  # fmt: skip
    env = {**os.environ, "PROBE_DIR": str(tmp_path)}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    job, child = (json.loads((tmp_path / f"{role}.json").read_text()) for role in ("job", "child"))
    assert (job["config"]["seed"], job["config"]["data"]["split_seed"], job["config"]["model"]["alpha"]) == (123, 2, 0.5)
    assert child["config"] == job["config"]
    assert child["cwd"] == job["cwd"] == str(tmp_path / "sweep" / "0")


def test_ddp_in_a_sweep_whose_jobs_run_side_by_side_is_refused(tmp_path):
    sweep = tmp_path / "sweep"
    result = subprocess.run(
        [sys.executable, "-m", "ssl_hybrid.train", "-m", "hydra/launcher=joblib", "trainer=ddp_cpu", *QUICK,
         f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env={**os.environ, "WANDB_MODE": "offline"}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 1
    summary = read_summary(sweep / "0")
    assert summary["status"] == "failed" and "would start 2 (trainer.devices x trainer.num_nodes)" in summary["error"]
    assert not (sweep / "0" / "checkpoints").exists()  # refused before training
