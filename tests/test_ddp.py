"""Multi-process training on CPU (gloo), inside a Hydra multirun: the case Lightning issue 11300 breaks."""

from __future__ import annotations

from conftest import run_quick_sweep
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
