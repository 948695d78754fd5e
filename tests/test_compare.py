from __future__ import annotations

import csv
import json
import shutil

import pytest

from ssl_hybrid.compare import CSV_FILE, PLOT_FILE, find_run_dirs, main
from ssl_hybrid.run_summary import read_summary


@pytest.fixture
def sweep(digits_multirun, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(digits_multirun, copy)
    return copy


def test_compare_aggregates_a_real_multirun(sweep, capsys):
    assert main([str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "4 runs found, 4 usable, 0 with problems" in out
    with (sweep / CSV_FILE).open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["model.alpha"], r["n"]) for r in rows] == [("0.9", "2"), ("1.0", "2")]
    for row in rows:
        alpha = float(row["model.alpha"])
        accs = [read_summary(sweep / str(j))["test/acc"] for j in range(4) if read_summary(sweep / str(j))["alpha"] == alpha]
        assert float(row["test/acc_mean"]) == pytest.approx(sum(accs) / 2)
        assert f"{alpha}" in out
    assert rows[1]["test/nelbo_bpd_mean"] == ""  # alpha = 1 has no generative branch
    assert (sweep / PLOT_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_reports_missing_and_failed_runs(sweep, tmp_path, capsys):
    (sweep / "0" / "metrics.json").unlink()
    summary = json.loads((sweep / "1" / "metrics.json").read_text())
    (sweep / "1" / "metrics.json").write_text(json.dumps({**summary, "status": "failed", "error": "RuntimeError: boom"}))
    assert main([str(sweep), "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "4 runs found, 2 usable, 2 with problems" in captured.out
    assert f"{sweep / '0'}: no metrics.json" in captured.err and "RuntimeError: boom" in captured.err
    assert (tmp_path / "out" / CSV_FILE).is_file()


def test_compare_can_put_any_run_parameter_on_the_x_axis(sweep, capsys):
    assert main([str(sweep), "--x", "data.split_seed", "--by", "alpha"]) == 0
    with (sweep / CSV_FILE).open() as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["series"], r["data.split_seed"]) for r in rows) == [
        ("alpha=0.9", "0"), ("alpha=0.9", "1"), ("alpha=1.0", "0"), ("alpha=1.0", "1"),
    ]  # fmt: skip


def test_compare_finds_runs_of_a_multirun_nested_in_another(sweep):
    shutil.copytree(sweep / "0", sweep / "reference" / "0")
    shutil.copytree(sweep / "1", sweep / "10")
    assert find_run_dirs([sweep]) == [sweep / str(j) for j in (0, 1, 2, 3, 10)] + [sweep / "reference" / "0"]


def test_compare_finds_run_dirs_given_directly(sweep):
    assert find_run_dirs([sweep / "2", sweep / "0"]) == [sweep / "2", sweep / "0"]
    with pytest.raises(FileNotFoundError):
        find_run_dirs([sweep / "nope"])


def test_compare_picks_each_series_best_x_on_validation_not_test(sweep, capsys):
    # validation and test disagree: alpha 0.9 is the better on validation, alpha 1 on test
    for job in range(4):
        path = sweep / str(job) / "metrics.json"
        summary = json.loads(path.read_text())
        val, test = (0.9, 0.2) if summary["alpha"] == 0.9 else (0.5, 0.8)
        path.write_text(json.dumps({**summary, "val/acc_best": val, "test/acc": test}))
    assert main([str(sweep), "--by", "objective"]) == 0
    best_table = capsys.readouterr().out.split("chosen by val/acc_best:")[1].splitlines()
    assert best_table[3].split()[:5] == ["objective=blend", "0.9", "0.9000", "2", "0.2000"]


def test_compare_resolves_interpolations_in_the_saved_configs(sweep, capsys):
    """A sweep with ``'seed=${data.split_seed}'`` saves the interpolation, not the value."""
    for job in range(4):
        config = sweep / str(job) / ".hydra" / "config.yaml"
        config.write_text(config.read_text().replace("\nseed: 0\n", "\nseed: ${data.split_seed}\n"))
    assert main([str(sweep), "--x", "seed", "--by", "alpha"]) == 0
    with (sweep / CSV_FILE).open() as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["series"], r["seed"], r["n"]) for r in rows) == [
        ("alpha=0.9", "0", "1"), ("alpha=0.9", "1", "1"), ("alpha=1.0", "0", "1"), ("alpha=1.0", "1", "1"),
    ]  # fmt: skip


def test_compare_reads_runs_from_the_wandb_api(monkeypatch, tmp_path, capsys):
    """The W&B path maps the API's runs like run directories: summary minus W&B's own keys, unfinished runs as
    problems. (No server is reachable here, so the API object is replaced by one holding two runs.)"""
    import wandb
    from types import SimpleNamespace

    def api_run(run_id, state, alpha, acc):
        summary = {"test/acc": acc, "val/acc_best": acc, "_runtime": 12.0, "status": "completed"}
        return SimpleNamespace(id=run_id, state=state, summary=summary, config={"model": {"alpha": alpha}})

    runs = [api_run("a", "finished", 0.9, 0.8), api_run("b", "finished", 0.9, 0.7), api_run("c", "crashed", 1.0, 0.1)]
    queries = []

    class FakeApi:
        def __init__(self, timeout):
            pass

        def runs(self, path, filters):
            queries.append((path, filters))
            return runs

    monkeypatch.setattr(wandb, "Api", FakeApi)
    assert main(["--wandb", "me/ssl-hybrid", "--group", "g1", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert queries == [("me/ssl-hybrid", {"group": "g1"})]
    assert "3 runs found, 2 usable, 1 with problems" in captured.out and "me/ssl-hybrid/c: crashed" in captured.err
    with (tmp_path / CSV_FILE).open() as f:
        (row,) = list(csv.DictReader(f))
    assert row["model.alpha"] == "0.9" and float(row["test/acc_mean"]) == pytest.approx(0.75)


def test_runs_with_propagated_labels_form_their_own_series(sweep):
    for job in (0, 1, 2, 3):
        summary = read_summary(sweep / str(job))
        if summary["alpha"] == 0.9:
            summary["label_propagation"] = "dims=100,neighbours=10,blur=True"
            (sweep / str(job) / "metrics.json").write_text(json.dumps(summary))
    assert main([str(sweep)]) == 0
    with (sweep / CSV_FILE).open() as f:
        rows = list(csv.DictReader(f))
    propagated = [r for r in rows if "label_propagation=dims=100,neighbours=10,blur=True" in r["series"]]
    assert [(r["model.alpha"], r["n"]) for r in propagated] == [("0.9", "2")]
    assert [r["model.alpha"] for r in rows if r not in propagated] == ["1.0"]


def test_compare_refuses_keys_no_run_has_and_paths_that_do_not_exist(sweep, tmp_path):
    for option in (["--x", "model.alph"], ["--metric", "test/accc"], ["--by", "model.alpha", "seeed"]):
        with pytest.raises(SystemExit, match=r"no run has (model\.alph|test/accc|seeed) \("):
            main([str(sweep), *option])
    with pytest.raises(SystemExit, match="nope is not a directory"):
        main([str(tmp_path / "nope")])


def test_compare_warns_when_a_point_pools_runs_of_different_data(sweep, capsys):
    summary = json.loads((sweep / "0" / "metrics.json").read_text())
    (sweep / "0" / "metrics.json").write_text(json.dumps({**summary, "dataset": "fashion_mnist"}))
    assert main([str(sweep)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and f"model.alpha={summary['alpha']}" in warnings[0]
    assert "dataset digits, fashion_mnist" in warnings[0] and "--by dataset" in warnings[0]


def test_compare_on_the_nelbo_itself_has_one_nelbo_column(sweep, capsys):
    assert main([str(sweep), "--metric", "test/nelbo_bpd"]) == 0
    assert capsys.readouterr().out.splitlines()[1].count("test/nelbo_bpd") == 1
    with (sweep / CSV_FILE).open() as f:
        assert next(csv.reader(f)) == ["series", "model.alpha", "n", "test/nelbo_bpd_mean", "test/nelbo_bpd_std"]
