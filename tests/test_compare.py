from __future__ import annotations

import csv
import re
import shutil
import socket
import statistics
import time
from collections import Counter

import pytest

from ssl_hybrid import compare
from ssl_hybrid.compare import CSV_FILE, PLOT_FILE, find_run_dirs, main
from ssl_hybrid.run_summary import SUMMARY_FILE, read_summary, write_json


def _csv_rows(folder) -> list[dict[str, str]]:
    with (folder / CSV_FILE).open() as f:
        return list(csv.DictReader(f))


def _edit_summary(run, drop: tuple[str, ...] = (), **changes) -> dict:
    """Rewrites a run's metrics.json with ``changes`` (keys with slashes through a dict: ``**{"test/acc": 1}``)
    and without the keys in ``drop``."""
    summary = {key: value for key, value in {**read_summary(run), **changes}.items() if key not in drop}
    write_json(run / SUMMARY_FILE, summary)
    return summary


@pytest.fixture
def sweep(digits_multirun, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(digits_multirun, copy)
    return copy


def test_compare_aggregates_a_real_multirun(sweep, capsys):
    assert main([str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "4 runs found, 4 usable, 0 with problems" in out
    rows = _csv_rows(sweep)
    assert [(r["model.alpha"], r["n"]) for r in rows] == [("0.9", "2"), ("1.0", "2")]
    summaries = [read_summary(sweep / str(job)) for job in range(4)]
    for row in rows:
        runs = [summary for summary in summaries if summary["alpha"] == float(row["model.alpha"])]
        accs = [run["test/acc"] for run in runs]
        assert float(row["test/acc_mean"]) == pytest.approx(statistics.fmean(accs))
        assert float(row["test/acc_std"]) == pytest.approx(statistics.stdev(accs))  # the sample std, over n - 1
    blended = [summary["test/nelbo_bpd"] for summary in summaries if summary["alpha"] == 0.9]
    assert float(rows[0]["test/nelbo_bpd_mean"]) == pytest.approx(statistics.fmean(blended))
    assert rows[1]["test/nelbo_bpd_mean"] == ""  # alpha = 1 has no generative branch
    assert (sweep / PLOT_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for row in rows:  # the printed table says what the csv holds
        assert f"{float(row['test/acc_mean']):.4f} +- {float(row['test/acc_std']):.4f}" in out


def test_the_plot_draws_the_csv_means_with_their_std_as_error_bars(sweep, monkeypatch):
    from matplotlib.axes import Axes

    drawn, draw = [], Axes.errorbar

    def errorbar(self, x, y, yerr=None, **kwargs):
        drawn.append((list(x), list(y), list(yerr)))
        return draw(self, x, y, yerr=yerr, **kwargs)

    monkeypatch.setattr(Axes, "errorbar", errorbar)
    assert main([str(sweep)]) == 0
    rows = _csv_rows(sweep)
    columns = ("model.alpha", "test/acc_mean", "test/acc_std")
    assert drawn == [tuple([float(row[column]) for row in rows] for column in columns)]  # one series, two alphas


def test_the_points_follow_the_number_x_is_not_its_spelling(sweep):
    for job, labels in enumerate([40, 5, 10, 5]):
        _edit_summary(sweep / str(job), labels_per_class=labels)
    assert main([str(sweep), "--x", "labels_per_class"]) == 0
    assert [row["labels_per_class"] for row in _csv_rows(sweep)] == ["5", "10", "40"]  # as text: 10, 40, 5


def test_compare_reports_the_jobs_a_stopped_sweep_never_started(sweep, capsys):
    shutil.rmtree(sweep / "3")  # the sweep was killed before its last job
    assert main([str(sweep)]) == 0
    captured = capsys.readouterr()
    assert "4 runs found, 3 usable, 1 with problems" in captured.out
    assert f"problem: {sweep / '3'}: not started: no run directory, though {sweep / 'multirun.yaml'} plans 4 jobs" in captured.err
    (sweep / "multirun.yaml").write_text("hydra: [sweeper\n")  # cut off mid-write: the runs found still count
    assert main([str(sweep)]) == 0
    captured = capsys.readouterr()
    assert "3 runs found, 3 usable, 0 with problems" in captured.out
    assert f"warning: {sweep / 'multirun.yaml'} unreadable, so its jobs cannot be checked against it" in captured.err


def test_compare_reports_jobs_left_by_an_earlier_sweep_into_the_same_folder(sweep, capsys):
    overrides = sweep / "2" / ".hydra" / "overrides.yaml"  # a job resumed in place records its ckpt_path too
    overrides.write_text(overrides.read_text() + "- ckpt_path=last.ckpt\n")
    assert main([str(sweep)]) == 0
    assert "4 runs found, 4 usable, 0 with problems" in capsys.readouterr().out
    # a second, smaller sweep into the folder (alpha 0.9 only), stopped before its first job wrote anything
    plan = sweep / "multirun.yaml"
    assert "model.alpha=1.0,0.9" in plan.read_text()
    plan.write_text(plan.read_text().replace("model.alpha=1.0,0.9", "model.alpha=0.9"))
    assert main([str(sweep)]) == 1
    captured = capsys.readouterr()
    assert "4 runs found, 0 usable, 4 with problems" in captured.out
    for job in (0, 1):  # alpha 1.0, which the new plan does not sweep
        assert f"problem: {sweep / str(job)}: not the job {plan} plans as {job} (model.alpha=0.9 data.split_seed={job}" in captured.err
    for job in (2, 3):
        assert f"problem: {sweep / str(job)}: not a job of {plan}, which plans 2: from an earlier sweep" in captured.err


def test_compare_reports_missing_failed_and_unreadable_runs(sweep, tmp_path, capsys):
    (sweep / "0" / SUMMARY_FILE).unlink()
    _edit_summary(sweep / "1", status="failed", error="RuntimeError: boom")
    for job in ("4", "5"):
        shutil.copytree(sweep / "2", sweep / job)
    (sweep / "4" / SUMMARY_FILE).write_text('{"test/acc": 0.9')  # cut off mid-write
    (sweep / "5" / ".hydra" / "config.yaml").write_text("model: [alpha: 0.9\n")
    assert main([str(sweep), "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "6 runs found, 2 usable, 4 with problems" in captured.out
    assert f"{sweep / '0'}: no metrics.json" in captured.err and "RuntimeError: boom" in captured.err
    assert f"{sweep / '4'}: unreadable metrics.json" in captured.err
    assert f"{sweep / '5'}: unreadable .hydra/config.yaml" in captured.err
    usable = Counter(str(read_summary(sweep / job)["alpha"]) for job in ("2", "3"))
    assert {row["model.alpha"]: int(row["n"]) for row in _csv_rows(tmp_path / "out")} == usable
    with pytest.raises(SystemExit):
        main([str(sweep), "--out", str(sweep / "2" / SUMMARY_FILE)])
    assert "is a file, not a folder" in capsys.readouterr().err


def test_a_choice_among_points_of_unequal_n_is_warned_about(sweep, capsys):
    assert main([str(sweep)]) == 0
    assert "unequal n" not in capsys.readouterr().err
    (sweep / "3" / SUMMARY_FILE).unlink()  # alpha 0.9 on split 1: its point is split 0 alone
    assert main([str(sweep)]) == 0
    err = capsys.readouterr().err
    assert "the best model.alpha is chosen among points of unequal n" in err
    assert "at model.alpha=0.9: n=1" in err and "at model.alpha=1.0: n=2" in err


def test_run_directories_after_by_are_explained_and_dash_dash_ends_its_keys(sweep, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--by", "model.alpha", str(sweep)])
    assert "--by took the run directories for keys" in capsys.readouterr().err
    assert main(["--out", str(tmp_path), "--by", "model.alpha", "--", str(sweep)]) == 0


def test_compare_names_the_usable_runs_that_lack_the_metric(sweep, capsys):
    summary = _edit_summary(sweep / "1", drop=("test/acc",))  # e.g. a run made before the metric existed
    assert main([str(sweep)]) == 0
    assert f"warning: 1 of 4 runs have no test/acc, so no point counts them: {sweep / '1'}" in capsys.readouterr().err
    counts = {row["model.alpha"]: int(row["n"]) for row in _csv_rows(sweep)}
    assert counts[str(summary["alpha"])] == 1 and sum(counts.values()) == 3


def test_compare_fails_when_no_run_is_usable(sweep, tmp_path, capsys):
    for job in range(4):
        (sweep / str(job) / SUMMARY_FILE).unlink()
    assert main([str(sweep), "--out", str(tmp_path / "out")]) == 1
    assert "4 runs found, 0 usable, 4 with problems" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def test_compare_can_put_any_run_parameter_on_the_x_axis(sweep, capsys):
    assert main([str(sweep), "--x", "data.split_seed", "--by", "alpha"]) == 0
    rows = _csv_rows(sweep)
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
    # validation and test disagree: alpha 0.9 is the better on validation as tested, alpha 1 on test and on the
    # head's validation accuracy
    for job in range(4):
        val, head, test = (0.9, 0.1, 0.2) if read_summary(sweep / str(job))["alpha"] == 0.9 else (0.5, 0.6, 0.8)
        _edit_summary(sweep / str(job), **{"val/acc_as_tested": val, "val/acc_best": head, "test/acc": test})
    assert main([str(sweep), "--by", "objective"]) == 0
    best_table = capsys.readouterr().out.split("chosen by val/acc_as_tested:")[1].splitlines()
    assert best_table[3].split()[:5] == ["objective=blend", "0.9", "0.9000", "2", "0.2000"]
    assert main([str(sweep), "--by", "objective", "--select", "val/acc_best"]) == 0  # asked for by name
    best_table = capsys.readouterr().out.split("chosen by val/acc_best:")[1].splitlines()
    assert best_table[3].split()[:5] == ["objective=blend", "1.0", "0.6000", "2", "0.8000"]
    # runs from before val/acc_as_tested existed are chosen by the head's validation accuracy, all of them alike
    for job in range(3):
        _edit_summary(sweep / str(job), drop=("val/acc_as_tested",))
    assert main([str(sweep), "--by", "objective"]) == 0
    best_table = capsys.readouterr().out.split("chosen by val/acc_best:")[1].splitlines()
    assert best_table[3].split()[:5] == ["objective=blend", "1.0", "0.6000", "2", "0.8000"]


def test_compare_picks_the_best_configuration_of_all_series_on_validation(sweep, capsys):
    # two series (alpha 1.0 relabelled as another objective): the best of all is the one validation prefers
    for job in range(4):
        summary = read_summary(sweep / str(job))
        other = summary["alpha"] == 1.0
        _edit_summary(sweep / str(job), objective="m2" if other else summary["objective"],
                      **{"val/acc_as_tested": 0.7 if other else 0.6, "test/acc": 0.5 if other else 0.9})  # fmt: skip
    assert main([str(sweep)]) == 0
    out, err = capsys.readouterr()
    assert "best model.alpha of each series" not in out  # each series has one alpha
    overall = out.split("best of all series, chosen by val/acc_as_tested:")[1].splitlines()
    assert overall[3].startswith("objective=m2") and overall[3].split()[-6:] == ["1.0", "0.7000", "2", "0.5000", "+-", "0.0000"]
    assert "ties" not in err
    # equal on validation up to float32 rounding: both are listed and the tie is reported, not decided silently
    for job in range(4):
        summary = read_summary(sweep / str(job))
        _edit_summary(sweep / str(job), **{"val/acc_as_tested": 0.7 if summary["alpha"] == 1.0 else 0.70000001})
    assert main([str(sweep)]) == 0
    out, err = capsys.readouterr()
    overall = out.split("best of all series, chosen by val/acc_as_tested:")[1].splitlines()
    assert sorted(line.split()[0] for line in overall[3:5]) == ["objective=blend", "objective=m2"]
    tied = "objective=blend / consistency_weight=0.0 / classify_with=head at 0.9; objective=m2 / consistency_weight=0.0 / classify_with=head at 1.0"
    assert f"warning: val/acc_as_tested ties {tied}: validation cannot choose between them" in err


def test_compare_resolves_interpolations_in_the_saved_configs_and_plan(sweep, capsys):
    """The sweep's ``seed=${data.split_seed}`` is saved as the interpolation, not its value, in each job's config
    and in multirun.yaml, whose jobs are not the plan's value of it (0) either."""
    assert "\nseed: ${data.split_seed}\n" in (sweep / "1" / ".hydra" / "config.yaml").read_text()
    assert main([str(sweep), "--x", "seed", "--by", "alpha"]) == 0
    assert "4 runs found, 4 usable, 0 with problems" in capsys.readouterr().out
    rows = _csv_rows(sweep)
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
    monkeypatch.setattr(compare, "wandb_server_answers", lambda: True)
    assert main(["--wandb", "me/ssl-hybrid", "--group", "g1", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert queries == [("me/ssl-hybrid", {"group": "g1"})]
    assert "3 runs found, 2 usable, 1 with problems" in captured.out and "me/ssl-hybrid/c: crashed" in captured.err
    (row,) = _csv_rows(tmp_path)
    assert row["model.alpha"] == "0.9" and float(row["test/acc_mean"]) == pytest.approx(0.75)
    with pytest.raises(SystemExit, match="no run has _runtime"):  # W&B's own keys are not run metrics
        main(["--wandb", "me/ssl-hybrid", "--group", "g1", "--out", str(tmp_path), "--metric", "_runtime"])

    def unknown_project():  # wandb raises a ValueError while paging through the runs of a project it lacks
        raise ValueError("Could not find project me/ssl-hybird")
        yield

    runs = unknown_project()
    with pytest.raises(SystemExit, match="W&B API: Could not find project me/ssl-hybird"):
        main(["--wandb", "me/ssl-hybird", "--group", "g1", "--out", str(tmp_path)])


def test_compare_says_at_once_when_the_wandb_server_cannot_be_reached(monkeypatch, tmp_path):
    """With a key but no network, wandb's API retries for about 30 s before failing; the probe fails in under 5 s
    (here at once: nothing listens on the port)."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(SystemExit, match=f"W&B API: http://127.0.0.1:{port} cannot be reached"):
        main(["--wandb", "me/ssl-hybrid", "--group", "g1", "--out", str(tmp_path)])
    assert time.monotonic() - started < 5


def test_runs_with_propagated_labels_form_their_own_series(sweep):
    for job in (0, 1, 2, 3):
        if read_summary(sweep / str(job))["alpha"] == 0.9:
            _edit_summary(sweep / str(job), label_propagation="dims=100,neighbours=10,blur=True")
    assert main([str(sweep)]) == 0
    rows = _csv_rows(sweep)
    propagated = [r for r in rows if "label_propagation=dims=100,neighbours=10,blur=True" in r["series"]]
    assert [(r["model.alpha"], r["n"]) for r in propagated] == [("0.9", "2")]
    assert [r["model.alpha"] for r in rows if r not in propagated] == ["1.0"]


def test_compare_refuses_keys_no_run_has_and_paths_that_do_not_exist(sweep, tmp_path):
    for option in (["--x", "model.alph"], ["--metric", "test/accc"], ["--by", "model.alpha", "seeed"]):
        with pytest.raises(SystemExit, match=r"no run has (model\.alph|test/accc|seeed) \("):
            main([str(sweep), *option])
    with pytest.raises(SystemExit, match="nope is not a directory"):
        main([str(tmp_path / "nope")])


@pytest.mark.parametrize(
    "key, other, expected",
    [
        ("dataset", "fashion_mnist", "digits, fashion_mnist"), ("unlabeled_ratio", 3, "3, 7"), ("teacher_ema", 0.99, "0.99, None"),
        # as model.likelihood=auto resolves on grayscale and on colour images: the config alone shows no difference
        ("likelihood", "discretized_logistic", "bernoulli, discretized_logistic"),
    ],
)
def test_compare_warns_when_a_point_pools_runs_of_different_settings(sweep, capsys, key, other, expected):
    summary = _edit_summary(sweep / "0", **{key: other})
    assert main([str(sweep)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and f"model.alpha={summary['alpha']}" in warnings[0]
    assert f"{key} {expected}" in warnings[0] and f"--by {key}" in warnings[0]


@pytest.mark.parametrize(
    ("edit", "warned"),
    [
        (("pretrained: false", "pretrained: true"), "model.backbone.pretrained False, True"),
        (("name: ssl_cnn_small", "name: ssl_cnn_small\n    width: 32"), "model.backbone.width 32, None"),
        (("decoder_width: 64", "decoder_width: 32"), "model.decoder_width 32, 64"),
        (("strong_transforms: []", "strong_transforms: null"), "data.strong_transforms None, []"),
        (("devices: 1", "devices: 2"), "trainer.devices 1, 2"),  # as trainer=ddp_cpu has it
        # a subclass of the user's own that keeps its parent's objective name; another folder of images
        (("_target_: ssl_hybrid.models.HybridModule", "_target_: mypkg.MyBlend"), "model._target_ mypkg.MyBlend, ssl_hybrid.models.HybridModule"),
        (("root: null", "root: /data/other_images"), "data.root /data/other_images, None"),
    ],
)
def test_compare_warns_when_a_point_pools_different_encoders_decoders_augmentations_or_process_counts(edit, warned, sweep, capsys):
    config = sweep / "0" / ".hydra" / "config.yaml"
    assert edit[0] in config.read_text()
    config.write_text(config.read_text().replace(*edit, 1))
    assert main([str(sweep)]) == 0
    assert f"pools runs with {warned}" in capsys.readouterr().err


def test_compare_warns_when_a_point_pools_alphas_or_series_that_by_does_not_split(sweep, capsys):
    assert main([str(sweep), "--x", "data.split_seed"]) == 0  # each split seed's point holds both alphas
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and all("pools runs with alpha 0.9, 1.0 (split them with --by alpha)" in w for w in warnings)
    _edit_summary(sweep / "0", objective="m2")
    assert main([str(sweep), "--by"]) == 0  # no series keys: each alpha's point pools both split seeds
    assert "pools runs with objective blend, m2 (split them with --by objective)" in capsys.readouterr().err


def test_a_run_without_validation_does_not_change_how_the_others_are_chosen(sweep, capsys):
    _edit_summary(sweep / "0", drop=("val/acc_as_tested",), **{"val/acc_best": None})  # data.val_per_class=0
    assert main([str(sweep)]) == 0
    captured = capsys.readouterr()
    assert "chosen by val/acc_as_tested:" in captured.out
    assert f"warning: 1 of 4 runs have no val/acc_as_tested, so no point counts them: {sweep / '0'}" in captured.err


def test_an_x_that_is_not_a_number_is_tabled_and_the_empty_plot_explained(sweep, capsys):
    assert main([str(sweep), "--x", "data.dataset", "--by", "model.alpha"]) == 0
    assert [(row["data.dataset"], row["n"]) for row in _csv_rows(sweep)] == [("digits", "2"), ("digits", "2")]
    assert "warning: no data.dataset value is a number, so alpha_curve.png has no curve" in capsys.readouterr().err


def test_compare_on_the_nelbo_itself_has_one_nelbo_column(sweep, capsys):
    assert main([str(sweep), "--metric", "test/nelbo_bpd"]) == 0
    assert capsys.readouterr().out.splitlines()[1].count("test/nelbo_bpd") == 1
    assert list(_csv_rows(sweep)[0]) == ["series", "model.alpha", "n", "test/nelbo_bpd_mean", "test/nelbo_bpd_std"]


def test_compare_leaves_a_glob_sweep_unchecked_without_calling_its_plan_unreadable(sweep, capsys):
    plan = sweep / "multirun.yaml"  # glob() expands against the config's options, which a plan does not hold
    plan.write_text(plan.read_text().replace("model.alpha=1.0,0.9", "model=glob(hy*)"))
    assert main([str(sweep)]) == 0
    captured = capsys.readouterr()
    assert "4 runs found, 4 usable, 0 with problems" in captured.out and "unreadable" not in captured.err


def test_baseline_pairs_each_run_with_the_run_at_the_baseline_that_saw_the_same_split_and_seed(sweep, capsys):
    assert main([str(sweep), "--baseline", "1"]) == 0  # 1 from the command line is the runs' 1.0
    out = capsys.readouterr().out
    summaries = [read_summary(sweep / str(job)) for job in range(4)]
    acc = {(s["alpha"], s["split_seed"], s["seed"]): s["test/acc"] for s in summaries}
    diffs = [acc[0.9, split, split] - acc[1.0, split, split] for split in (0, 1)]  # the sweep's seed follows its split
    table = out.split("test/acc minus that of model.alpha=1, paired by data.split_seed, seed:\n")[1]
    assert re.findall(r"  (\S+) +(\d+) +(\S+) \+- (\S+) +(\S+) *$", table, re.MULTILINE) == [
        ("0.9", "2", f"{statistics.fmean(diffs):+.4f}", f"{statistics.stdev(diffs):.4f}", f"{min(diffs):+.4f}")
    ]


def test_baseline_reports_an_unpaired_run_and_refuses_an_ambiguous_partner(sweep, tmp_path, capsys):
    jobs = {(summary["alpha"], summary["split_seed"]): job for job in range(4) if (summary := read_summary(sweep / str(job)))}
    (sweep / str(jobs[1.0, 1]) / SUMMARY_FILE).unlink()
    assert main([str(sweep), "--baseline", "1.0"]) == 0
    captured = capsys.readouterr()
    assert "no model.alpha=1.0 partner with the same data.split_seed, seed (or no test/acc) for" in captured.err
    assert re.search(r"  0\.9 +1 +\S+ \+- - ", captured.out)  # one pair: no std
    copy = tmp_path / "again"
    shutil.copytree(sweep, copy)
    with pytest.raises(SystemExit, match="at model.alpha=1.0 have data.split_seed=0, seed=0: split them with --by"):
        main([str(sweep), str(copy), "--baseline", "1.0"])
    with pytest.raises(SystemExit, match="no run has model.alpha=0.5"):
        main([str(sweep), "--baseline", "0.5"])
