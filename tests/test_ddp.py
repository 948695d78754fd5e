"""Multi-process training on CPU (gloo), inside a Hydra multirun: the case Lightning issue 11300 breaks."""

from __future__ import annotations

from conftest import run_quick_sweep
from ssl_hybrid.run_summary import read_summary


def test_ddp_inside_a_multirun_runs_each_job_once(tmp_path):
    sweep = run_quick_sweep(tmp_path, "model.alpha=1.0,0.9", "trainer=ddp_cpu")
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    assert not (tmp_path / "logs").exists()  # no child fell back to a run directory of its own
    summaries = [read_summary(sweep / job) for job in ("0", "1")]
    assert [s["alpha"] for s in summaries] == [1.0, 0.9]
    assert all(s["status"] == "completed" and s["global_step"] == 10 for s in summaries)
