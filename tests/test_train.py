"""End-to-end: the real configs, real data, short trainings through ssl_hybrid.train."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import signal
from collections import Counter
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import fsspec
import pytest
import pytorch_lightning as pl
import timm
import torch
import wandb
import yaml
from hydra.errors import InstantiationException
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from conftest import compose_train, run_quick_sweep
from ssl_hybrid.data import SemiSupervisedDataModule
from ssl_hybrid.data.labels import split_labels
from ssl_hybrid.models import HybridModule
from ssl_hybrid.models.base import load_module
from ssl_hybrid.run_summary import LABELED_INDICES_FILE, plain_metrics, read_summary
from ssl_hybrid.train import main, train

REQUIRED = {
    "test/acc", "test/nelbo_bpd", "val/acc_best", "alpha", "labels_per_class", "split_seed", "seed", "dataset",
    "backbone", "train_seconds", "train_images_per_second", "startup_seconds",
}  # fmt: skip


def _logged_rows(run: Path, version: int = 0) -> list[dict[str, str]]:
    """The rows of a run's CSV log; version N is the Nth session of a resumed run."""
    with (run / "csv" / f"version_{version}" / "metrics.csv").open() as logged:
        return list(csv.DictReader(logged))


def _logged_steps(run: Path, key: str, version: int = 0) -> list[int]:
    """The steps at which the run's CSV log has ``key`` (``train/loss``: training steps; ``val/acc``: validations)."""
    return [int(row["step"]) for row in _logged_rows(run, version) if row.get(key)]


def extra_checkpoint(folder: Path, filename: str, **settings: Any) -> tuple[str, ...]:
    """Overrides that add a ModelCheckpoint of the test's own, writing ``folder/filename.ckpt`` (``settings``: its
    other arguments)."""
    key = "+callbacks.test_checkpoint"
    return (
        f"{key}._target_=pytorch_lightning.callbacks.ModelCheckpoint", f"{key}.dirpath={folder}", f"{key}.filename={filename}",
        *(f"{key}.{name}={value}" for name, value in settings.items()),
    )  # fmt: skip


def assert_same_weights(run: Path, other: Path) -> None:
    weights, others = (torch.load(r / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"] for r in (run, other))
    assert weights.keys() == others.keys()
    assert all(torch.equal(weights[key], others[key]) for key in weights)


def test_digits_run_learns_and_writes_its_run_directory(train_cfg, tmp_path, digits):
    cfg = train_cfg("trainer.max_steps=150", "trainer.val_check_interval=50", "data.split_seed=1", "seed=2")
    summary = train(cfg)
    run = tmp_path / "run"
    on_disk = read_summary(run)
    assert REQUIRED <= on_disk.keys() and on_disk == json.loads(json.dumps(summary))
    assert on_disk["status"] == "completed" and on_disk["global_step"] == 150
    assert on_disk["test/acc"] >= 0.8, on_disk  # 10 labels per class, 150 steps
    assert on_disk["test/nelbo_bpd"] > 0 and 0 < on_disk["startup_seconds"] < on_disk["wall_seconds"]
    # labeled and unlabeled images of every step, over the training time alone
    per_step = on_disk["batch_size"] + round(on_disk["unlabeled_ratio"] * on_disk["batch_size"])
    assert on_disk["train_images_per_second"] == pytest.approx(150 * per_step / on_disk["train_seconds"])
    # the head classifies, so the tested weights score validation as when the checkpoint was chosen
    assert on_disk["val/acc_as_tested"] == pytest.approx(on_disk["val/acc_best"], abs=1e-6)
    assert (on_disk["dataset"], on_disk["split_seed"], on_disk["seed"], on_disk["alpha"]) == ("digits", 1, 2, 0.9)
    assert {p.name for p in (run / "checkpoints").iterdir()} == {"best.ckpt", "last.ckpt"}
    labeled = json.loads((run / LABELED_INDICES_FILE).read_text())  # split seed 1's labels, as split_labels draws them
    assert labeled["labeled"] == split_labels(digits.train.labels, labels_per_class=10, val_per_class=10, split_seed=1).labeled.tolist()
    assert labeled["labeled_labels"] == digits.train.labels[labeled["labeled"]].tolist()
    assert Counter(labeled["labeled_labels"]) == {c: 10 for c in range(10)}
    assert (run / "reconstructions.png").stat().st_size > 0 and (run / "samples.png").stat().st_size > 0
    # checkpoints hold plain containers only
    checkpoint = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["alpha"] == 0.9
    # ...and the one tested is the one of the run's best val/acc
    validations = {int(row["step"]): float(row["val/acc"]) for row in _logged_rows(run) if row.get("val/acc")}
    assert len(validations) == 3 and on_disk["val/acc_best"] == pytest.approx(max(validations.values()))
    assert validations[checkpoint["global_step"] - 1] == max(validations.values())  # logged at the step it follows
    # the loggers get the run's config once, as composed: no second copy of the model's arguments at the top level
    logged = yaml.safe_load(next((run / "csv").rglob("hparams.yaml")).read_text())
    assert set(logged) == set(cfg) and logged["model"]["likelihood"] == cfg.model.likelihood
    # ...and load outside Hydra into a model that classifies like the tested one
    model = HybridModule.load_from_checkpoint(run / "checkpoints" / "best.ckpt").eval()
    test = digits.test
    accuracy = (model(test.images).argmax(1) == test.labels).float().mean().item()
    assert accuracy == pytest.approx(on_disk["test/acc"], abs=1e-6)
    # ...also from a remote store, which Lightning reads through fsspec
    with fsspec.open("memory://elsewhere/best.ckpt", "wb") as remote:
        remote.write((run / "checkpoints" / "best.ckpt").read_bytes())
    remote_model = HybridModule.load_from_checkpoint("memory://elsewhere/best.ckpt").eval()
    assert torch.equal(remote_model(test.images), model(test.images))


def test_a_run_with_ema_weights_tests_the_averaged_weights_that_validation_chose(train_cfg, recwarn):
    ema = ("+callbacks.ema._target_=pytorch_lightning.callbacks.EMAWeightAveraging", "+callbacks.ema.decay=0.9")
    summary = train(train_cfg(*ema))
    best = torch.load(summary["best_checkpoint"], map_location="cpu", weights_only=False)
    averaged, current = best["state_dict"], best["current_model_state"]
    assert any(not torch.equal(averaged[key], current[key]) for key in averaged)
    assert summary["val/acc_as_tested"] == pytest.approx(summary["val/acc_best"], abs=1e-6)
    assert not [w for w in recwarn if "callbacks used to create the checkpoint" in str(w.message)]


def test_data_loader_workers_leave_a_run_unchanged(train_cfg, tmp_path):
    """Three passes over the pool and two validations: every new loader iterator draws from torch's generator."""
    runs = [train(train_cfg("trainer.max_steps=15", f"data.num_workers={n}", output_dir=tmp_path / str(n))) for n in (0, 2)]
    without, with_workers = ({k: v for k, v in run.items() if k.startswith(("train/", "val/", "test/"))} for run in runs)
    assert with_workers == without and {"train/loss", "val/acc", "test/acc"} <= without.keys()


def test_a_run_in_true_half_precision_trains_tests_and_draws_samples(train_cfg, tmp_path):
    """bf16-true casts weights and buffers, so the inputs and the prior's samples must follow them."""
    summary = train(train_cfg("trainer.max_steps=6", "trainer.val_check_interval=3", "+trainer.precision=bf16-true"))
    assert summary["status"] == "completed" and summary["global_step"] == 6
    # finite (a non-finite metric is recorded as null)
    assert summary["test/acc"] is not None and summary["test/nelbo_bpd"] is not None and summary["test/nelbo_bpd"] > 0
    weights = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert {tensor.dtype for name, tensor in weights.items() if name.endswith(".weight")} == {torch.bfloat16}
    assert (tmp_path / "run" / "samples.png").stat().st_size > 0


def test_alpha_one_reports_no_nelbo(train_cfg, tmp_path):
    summary = train(train_cfg("model.alpha=1.0"))
    assert summary["test/nelbo_bpd"] is None and summary["test/acc"] is not None
    assert read_summary(tmp_path / "run")["test/nelbo_bpd"] is None


@pytest.mark.parametrize(
    "override, warning",
    [
        ("data.val_per_class=0", "no validation images"),
        ("trainer.val_check_interval=7", "no validation in the run's 6 steps (trainer.val_check_interval=7)"),
        ("trainer.max_steps=-1 trainer.max_epochs=1", "no validation in the run's 5 steps (trainer.val_check_interval=10)"),
    ],
)
def test_a_run_without_validation_says_so_and_tests_its_final_weights(override, warning, train_cfg, tmp_path, caplog):
    summary = train(train_cfg("trainer.max_steps=6", *override.split()))
    assert warning in caplog.text and "so no best checkpoint; the final weights are tested" in caplog.text
    assert summary["status"] == "completed" and summary["val/acc_best"] is None and summary["test/acc"] is not None
    assert {path.name for path in (tmp_path / "run" / "checkpoints").iterdir()} == {"last.ckpt"}


def _count_training_batches(monkeypatch) -> list[int]:
    steps: list[int] = []
    monkeypatch.setattr(HybridModule, "on_train_batch_end", lambda module, *args: steps.append(module.global_step))
    return steps


def test_resuming_from_last_checkpoint_continues_training(train_cfg, tmp_path, monkeypatch, caplog):
    first = train(train_cfg("trainer.max_steps=25", output_dir=tmp_path / "first"))  # the last validation at 20
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    assert first["global_step"] == torch.load(last, weights_only=True)["global_step"] == 25
    steps = _count_training_batches(monkeypatch)
    # the learning rate does not go on decaying towards step 25: it follows the 40-step cosine, and says so
    with pytest.warns(UserWarning, match=r"length \(40 steps\) is not the 25 .* at step 25 it is 0\.\d+ x .* instead of 0 x"):
        resumed = train(train_cfg("trainer.max_steps=40", f"ckpt_path={last}", output_dir=tmp_path / "second"))
    assert resumed["global_step"] == 40 and resumed["status"] == "completed"
    assert steps == list(range(26, 41))  # only the 15 steps the first run had not trained
    state = torch.load(tmp_path / "second" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 40
    assert f"hydra.run.dir={tmp_path / 'first'}" in caplog.text  # elsewhere, the best score so far is lost


def test_a_run_resumed_mid_epoch_draws_the_batches_the_uninterrupted_run_drew(train_cfg, tmp_path, monkeypatch):
    drawn = []
    augment = SemiSupervisedDataModule.augment

    def record(datamodule, batch):  # the gathered uint8 images, before the random augmentation
        drawn.append((batch["labeled"][0].sum().item(), batch["unlabeled"].sum().item()))
        return augment(datamodule, batch)

    monkeypatch.setattr(SemiSupervisedDataModule, "augment", record)
    at_step_7 = extra_checkpoint(tmp_path, "step_7", every_n_train_steps=7)
    train(train_cfg("trainer.max_steps=12", *at_step_7, output_dir=tmp_path / "whole"))
    uninterrupted, drawn[:] = list(drawn), []
    progress = torch.load(tmp_path / "step_7.ckpt", weights_only=True)["loops"]["fit_loop"]
    assert progress["epoch_progress"]["current"]["completed"] == 1  # an epoch is 5 steps: 2 into the second
    train(train_cfg("trainer.max_steps=12", f"ckpt_path={tmp_path / 'step_7.ckpt'}", output_dir=tmp_path / "resumed"))
    assert len(uninterrupted) == 12 and drawn == uninterrupted[7:]
    # the same augmentations and VAE noise too: it ends where the uninterrupted run ended
    assert_same_weights(tmp_path / "resumed", tmp_path / "whole")


def test_a_checkpoint_saved_after_a_step_before_its_due_validation_resumes_with_that_validation(train_cfg, tmp_path):
    # the tests' runs validate every 10 steps; saved after the 10th step trains, before it validates (once: 15 steps)
    at_step_10 = extra_checkpoint(tmp_path, "step_10", every_n_train_steps=10)
    train(train_cfg("trainer.max_steps=15", *at_step_10, output_dir=tmp_path / "whole"))
    train(train_cfg("trainer.max_steps=15", f"ckpt_path={tmp_path / 'step_10.ckpt'}", output_dir=tmp_path / "resumed"))
    validated = _logged_steps(tmp_path / "whole", "val/acc")
    assert 9 in validated  # the 10th step's
    assert _logged_steps(tmp_path / "resumed", "val/acc") == validated
    assert_same_weights(tmp_path / "resumed", tmp_path / "whole")


def test_a_run_resumed_from_a_validations_checkpoint_ends_with_the_uninterrupted_runs_weights(train_cfg, tmp_path):
    """After the first validation: the sample grids, which draw random numbers every second validation, must
    count on from where they were."""
    at_each_validation = extra_checkpoint(tmp_path, "'at_{step}'", auto_insert_metric_name="false", save_top_k=-1)
    assert train_cfg().callbacks.generative_grids.every_n_validations == 2
    train(train_cfg("trainer.max_steps=25", *at_each_validation, output_dir=tmp_path / "whole"))
    train(train_cfg("trainer.max_steps=25", f"ckpt_path={tmp_path / 'at_10.ckpt'}", output_dir=tmp_path / "resumed"))
    assert_same_weights(tmp_path / "resumed", tmp_path / "whole")


def test_how_often_a_run_validates_does_not_change_how_it_trains(train_cfg, tmp_path):
    # each validation draws random numbers (its loader's seed, the VAE's noise; the sample grids every second one)
    train(train_cfg("trainer.max_steps=20", "trainer.val_check_interval=5", output_dir=tmp_path / "often"))
    train(train_cfg("trainer.max_steps=20", "trainer.val_check_interval=20", output_dir=tmp_path / "once"))
    assert_same_weights(tmp_path / "often", tmp_path / "once")


def test_a_mean_teacher_resumes_from_a_checkpoint_saved_after_a_step(train_cfg, tmp_path):
    """ModelCheckpoint(every_n_train_steps) saves in on_train_batch_end, before the module's own hook: the teacher
    must already have followed that step."""
    strong = "data.strong_transforms=[{_target_: kornia.augmentation.RandomAffine, degrees: 30, p: 1.0}]"
    teacher = ("model.consistency_weight=1", "model.teacher_ema=0.9", strong, "trainer.max_steps=12")
    at_step_7 = extra_checkpoint(tmp_path, "step_7", every_n_train_steps=7)
    train(train_cfg(*teacher, *at_step_7, output_dir=tmp_path / "whole"))
    train(train_cfg(*teacher, f"ckpt_path={tmp_path / 'step_7.ckpt'}", output_dir=tmp_path / "resumed"))
    assert_same_weights(tmp_path / "resumed", tmp_path / "whole")


@pytest.mark.parametrize(
    ("stop", "hook", "batches"),
    [("ctrl_c", "training_step", 8), ("ctrl_c", "on_train_batch_end", 8), ("sigterm", "on_train_batch_end", 10),
     ("ctrl_c", "on_train_batch_end", 20)],
    ids=["ctrl_c_before_its_step", "ctrl_c_after_its_step", "sigterm_at_an_epochs_end", "ctrl_c_before_a_due_validation"],
)
def test_a_run_resumed_after_a_stop_draws_and_logs_as_the_uninterrupted_run(stop, hook, batches, train_cfg, tmp_path, monkeypatch):
    drawn = []
    augment = SemiSupervisedDataModule.augment

    def record(datamodule, batch):
        drawn.append(batch["labeled"][0].sum().item())
        return augment(datamodule, batch)

    monkeypatch.setattr(SemiSupervisedDataModule, "augment", record)
    steps = ("trainer.max_steps=22", "trainer.val_check_interval=20")  # 5 steps an epoch, logged every 5th
    whole = train(train_cfg(*steps, output_dir=tmp_path / "whole"))
    uninterrupted, drawn[:] = list(drawn), []
    original = getattr(HybridModule, hook)

    def stop_in_batch(module, *args):  # the 8th: 3rd of the 2nd epoch, before or after it trains; the 10th: its last
        if len(drawn) == batches:
            if stop == "ctrl_c":
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGTERM)  # Lightning acts on it once the epoch has ended
        return original(module, *args)

    monkeypatch.setattr(HybridModule, hook, stop_in_batch)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(SystemExit):
            train(train_cfg(*steps, output_dir=tmp_path / "run"))
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    monkeypatch.setattr(HybridModule, hook, original)
    trained = batches - 1 if hook == "training_step" else batches
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == trained
    drawn[:] = []
    resumed = train(train_cfg(*steps, f"ckpt_path={last}", output_dir=tmp_path / "run"))
    assert drawn == uninterrupted[trained:] and resumed["epochs"] == whole["epochs"]
    assert_same_weights(tmp_path / "run", tmp_path / "whole")
    logged = _logged_steps(tmp_path / "whole", "train/loss")
    assert _logged_steps(tmp_path / "run", "train/loss", version=1) == [step for step in logged if step >= trained]
    validated = _logged_steps(tmp_path / "whole", "val/acc")
    assert _logged_steps(tmp_path / "run", "val/acc", version=1) == [step for step in validated if step >= trained - 1]


def test_resuming_in_place_keeps_the_best_checkpoint_and_score(train_cfg, tmp_path, caplog, monkeypatch, recwarn):
    run = tmp_path / "run"
    first = train(train_cfg("trainer.max_steps=25", output_dir=run))
    last = f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"
    elsewhere = train(train_cfg("trainer.max_steps=25", last, output_dir=tmp_path / "elsewhere"))
    assert elsewhere["val/acc_best"] is None  # Lightning's own rule, which the warning above explains
    caplog.clear()
    in_place = train(train_cfg("trainer.max_steps=25", last, output_dir=run))
    assert "another run directory" not in caplog.text
    assert not [w for w in recwarn if "its checkpoint was trained for" in str(w.message)]  # the same length
    assert in_place["val/acc_best"] == first["val/acc_best"] is not None
    assert in_place["best_checkpoint"] == first["best_checkpoint"]
    # ...and so does the val/acc_best the loggers and the progress bar show while the resumed run trains on
    logged_best = []
    monkeypatch.setattr(
        HybridModule, "on_train_batch_start", lambda module, *args: logged_best.append(module.val_acc_best.compute().item())
    )
    caplog.clear()
    resumed = train(train_cfg("trainer.max_steps=26", "trainer.val_check_interval=100", last, output_dir=run))
    assert logged_best == [pytest.approx(first["val/acc_best"])]
    assert resumed["train_seconds"] > first["train_seconds"]  # Lightning's Timer counts every session of the run
    # no validation in the resumed step, yet the run's best checkpoint is tested, not the final weights
    assert resumed["best_checkpoint"] == first["best_checkpoint"] and "final weights are tested" not in caplog.text


def test_a_pretrained_run_loads_and_resumes_without_its_weights_file(train_cfg, tmp_path):
    weights = tmp_path / "weights.pth"
    torch.save(timm.create_model("ssl_cnn_small", in_chans=1).state_dict(), weights)
    pretrained = ("model.backbone.pretrained=true", f"+model.backbone.pretrained_cfg_overlay.file={weights}")
    run = tmp_path / "run"
    train(train_cfg("trainer.max_steps=10", *pretrained, output_dir=run))
    weights.unlink()  # moved, or a machine without it: the checkpoints hold every weight
    last = run / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=True)["state_dict"]
    for module in (load_module(last), HybridModule.load_from_checkpoint(last)):  # Lightning's own loader too
        assert all(torch.equal(value, saved[f"backbone.{key}"]) for key, value in module.backbone.state_dict().items())
    resumed = train(train_cfg("trainer.max_steps=12", *pretrained, f"ckpt_path={last}", output_dir=run))
    assert resumed["status"] == "completed" and resumed["global_step"] == 12


def test_a_resume_in_place_that_would_change_the_run_is_refused_before_anything_is_written(train_cfg, tmp_path, caplog):
    run = tmp_path / "run"
    overrides = run / ".hydra" / "overrides.yaml"
    overrides.parent.mkdir(parents=True)
    overrides.write_text("- model.alpha=1.0\n- trainer.max_steps=20\n")  # as the Hydra CLI writes them
    train(train_cfg("model.alpha=1.0", "trainer.max_steps=20", output_dir=run))
    kept = {path: path.read_bytes() for path in (run / "metrics.json", overrides, run / "checkpoints" / "last.ckpt")}
    last = f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"
    overrides.write_text(f"- {last}\n")  # Hydra rewrites .hydra/ before the run starts
    with pytest.raises(ValueError, match=r"(?s)model.alpha: 1.0 \(this command: 0.9\).*overrides: model.alpha=1.0\n"):
        train(train_cfg(last, "trainer.max_steps=30", output_dir=run))
    for change, difference in [("data.split_seed=1", "data.split_seed: 0 (this command: 1)"), ("seed=1", "seed: 0 (this command: 1)")]:
        with pytest.raises(ValueError, match=re.escape(difference)):  # the data and the seed count as the model does
            train(train_cfg(last, "model.alpha=1.0", change, "trainer.max_steps=30", output_dir=run))
    # a checkpoint that is not there, or not a checkpoint, is refused the same way
    for ckpt, error, message in [
        (run / "checkpoints" / "lats.ckpt", FileNotFoundError, "ckpt_path: no checkpoint at"),
        (run / "metrics.json", ValueError, "ckpt_path: .*metrics.json could not be read as a checkpoint"),
    ]:
        overrides.write_text(f"- ckpt_path={ckpt}\n")
        with pytest.raises(error, match=f"(?s){message}.*Hydra had just replaced, are restored"):
            train(train_cfg(f"ckpt_path={ckpt}", "model.alpha=1.0", output_dir=run))
        assert overrides.read_bytes() == kept[overrides]
    assert {path: path.read_bytes() for path in kept} == kept
    # elsewhere, other settings make a new run that starts from the checkpoint, and say so
    elsewhere = train(train_cfg(last, "model.alpha=1.0", "seed=1", "trainer.max_steps=30", output_dir=tmp_path / "new"))
    assert elsewhere["status"] == "completed" and "seed: 0 (this command: 1)" in caplog.text


def test_a_resume_in_place_continues_the_runs_wandb_run(train_cfg, tmp_path):
    run = tmp_path / "run"
    train(train_cfg("logger=wandb", "trainer.max_steps=10", output_dir=run))
    last = f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"
    train(train_cfg("logger=wandb", "trainer.max_steps=15", last, output_dir=run))
    # one folder per session, offline-run-<time>-<run id>[-<n> when two start in the same second]
    sessions = sorted((run / "wandb").glob("offline-run-*"))
    assert len(sessions) == 2 and len({path.name for session in sessions for path in session.glob("run-*.wandb")}) == 1


@pytest.mark.parametrize(
    "raised, surfaces_as, status",
    [(KeyboardInterrupt, SystemExit, "interrupted"), (RuntimeError, RuntimeError, "failed")],
    ids=["ctrl_c", "error"],
)
def test_a_run_stopped_mid_training_records_why_and_keeps_its_latest_state(
    raised, surfaces_as, status, train_cfg, tmp_path, monkeypatch, caplog
):
    def stop_at_step_15(module, outputs, batch, batch_idx):
        if module.global_step == 15:
            raise raised("stopped at step 15")

    monkeypatch.setattr(HybridModule, "on_train_batch_end", stop_at_step_15)
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(surfaces_as):  # Lightning answers Ctrl-C with a graceful shutdown, then sys.exit(1)
            train(train_cfg())
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores further Ctrl-C once it is shutting down
    summary = read_summary(tmp_path / "run")
    assert summary["status"] == status and REQUIRED <= summary.keys() and summary["dataset"] == "digits"
    why = "RuntimeError: stopped at step 15" if raised is RuntimeError else "stopped by Ctrl-C or a signal"
    assert summary["error"] == why and f"run {status}: {why}" in caplog.text  # the run's log says so too
    # how far it got: the step, and the best checkpoint of the validation at step 10
    assert summary["global_step"] == 15 and summary["val/acc_best"] is not None
    assert summary["best_checkpoint"].endswith("best.ckpt")
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 15
    assert all((tmp_path / "run" / f"{name}.png").stat().st_size > 0 for name in ("samples", "reconstructions"))


def test_a_run_stopped_by_sigterm_is_recorded_as_interrupted_and_exits_non_zero(train_cfg, tmp_path, monkeypatch):
    def sigterm_at_step_15(module, outputs, batch, batch_idx):
        if module.global_step == 15:
            os.kill(os.getpid(), signal.SIGTERM)  # a scheduler's preemption: Lightning's handler stops the run

    monkeypatch.setattr(HybridModule, "on_train_batch_end", sigterm_at_step_15)
    handler = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as exit_:
            train(train_cfg())
    finally:
        signal.signal(signal.SIGTERM, handler)
    assert exit_.value.code == 128 + signal.SIGTERM  # Lightning's own SIGTERMException exits 0
    summary = read_summary(tmp_path / "run")
    assert summary["status"] == "interrupted" and summary["global_step"] == 15


def test_ctrl_c_before_training_is_recorded_as_an_interruption(train_cfg, tmp_path, monkeypatch):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pl, "seed_everything", ctrl_c)  # the first thing a run does after its checks
    with pytest.raises(KeyboardInterrupt):
        train(train_cfg())
    summary = read_summary(tmp_path / "run")
    assert summary["status"] == "interrupted" and summary["error"] == "stopped by Ctrl-C or a signal"


def test_a_single_process_run_logs_though_a_launcher_left_its_rank_in_the_environment(train_cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(rank_zero_only, "rank", 1)  # what Lightning reads at import from e.g. SLURM_PROCID=1
    summary = train(train_cfg("trainer.max_steps=10"))
    assert summary["status"] == "completed"
    assert (tmp_path / "run" / "csv" / "version_0" / "metrics.csv").stat().st_size > 0


def test_image_folder_end_to_end(train_cfg, tmp_path, image_folder_root):
    folder = (f"data.root={image_folder_root}", "data.image_size=8", "data.source_options.channels=1")
    # no flips or 4-pixel crops, the option's defaults for natural images: they would scramble 8x8 digits
    cfg = train_cfg("data=image_folder", *folder, "data.train_transforms=[]", "trainer.max_steps=100")
    summary = train(cfg)
    assert summary["status"] == "completed" and summary["dataset"] == "image_folder"
    assert summary["test/acc"] >= 0.6 and summary["test/nelbo_bpd"] > 0, summary  # chance is 0.1
    # every image in labeled/ keeps its label, the class its folder names (validation comes from val/)
    split = json.loads((tmp_path / "run" / LABELED_INDICES_FILE).read_text())
    labeled_folders = (image_folder_root / "labeled").iterdir()
    per_folder = {int(d.name.removeprefix("digit_")): len(list(d.glob("*.png"))) for d in labeled_folders}
    assert Counter(split["labeled_labels"]) == per_folder and sum(per_folder.values()) == 300


def test_fashion_mnist_end_to_end_from_idx_files(train_cfg, fashion_idx_dir):
    summary = train(train_cfg("data=fashion_mnist", f"data.root={fashion_idx_dir}", "data.val_per_class=10", "trainer.max_steps=20"))
    assert summary["status"] == "completed" and summary["test/nelbo_bpd"] > 0
    split = json.loads((Path(summary["output_dir"]) / LABELED_INDICES_FILE).read_text())
    assert Counter(split["labeled_labels"]) == dict.fromkeys(range(10), 10) and len(split["val"]) == 100


@pytest.mark.parametrize(
    ("override", "error", "named"),
    [
        ("data=fashion_mnist data.root={nowhere}", FileNotFoundError, "data.root"),
        ("model.alpha=[0.5]", InstantiationException, "model.alpha"),  # a list, which JSON took for a config node
        ("trainer.max_steps=-1", ValueError, "trainer.max_steps"),  # no length: the cosine schedule has no end
        ("trainer.max_steps=0", ValueError, "trainer.max_steps"),  # Lightning would test the untrained model
        ("trainer.max_steps=ten", ValueError, "trainer.max_steps must be an integer"),  # Lightning: str < int
        ("trainer.max_epochs=1.5", ValueError, "trainer.max_epochs must be an integer"),
        ("~logger", ValueError, "logger=none drops both"),  # Lightning: the LR monitor without a logger
        ("trainer.val_check_interval=0", ValueError, "trainer.val_check_interval"),  # Lightning: ZeroDivisionError
        ("seed=1.5", ValueError, "seed must be an integer"),  # Lightning would seed 1 and metrics.json record 1.5
        ("seed=null", ValueError, "seed must be an integer"),  # Lightning would seed 0 and metrics.json record null
    ],
)
def test_a_failing_run_still_writes_its_summary_naming_what_to_change(override, error, named, train_cfg, tmp_path):
    with pytest.raises(error):
        train(train_cfg(*override.format(nowhere=tmp_path / "nowhere").split()))
    summary = read_summary(tmp_path / "run")
    assert summary["status"] == "failed" and named in summary["error"] and summary["test/acc"] is None


@pytest.mark.parametrize("fails", [False, True], ids=["completed", "failed"])
def test_wandb_logger_runs_offline_without_credentials_and_finishes_with_the_runs_outcome(
    fails, train_cfg, tmp_path, monkeypatch
):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    exit_codes, finish = [], wandb.sdk.wandb_run.Run.finish
    monkeypatch.setattr(
        wandb.sdk.wandb_run.Run, "finish", lambda run, **kwargs: (exit_codes.append(kwargs.get("exit_code")), finish(run, **kwargs))
    )
    if fails:
        monkeypatch.setattr(HybridModule, "on_train_batch_end", Mock(side_effect=RuntimeError("stopped at step 0")))
    with pytest.raises(RuntimeError) if fails else contextlib.nullcontext():
        train(train_cfg("logger=wandb", "trainer.max_steps=10"))
    assert read_summary(tmp_path / "run")["status"] == ("failed" if fails else "completed")
    assert exit_codes == [1 if fails else 0]  # W&B shows a failed run as failed, not finished
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*"))


def test_a_run_that_diverged_is_failed_not_completed(train_cfg, tmp_path):
    with pytest.raises(FloatingPointError, match="the run diverged: .*test/nelbo_bpd"):
        train(train_cfg("model.optimizer.lr=10"))  # the decoder's BatchNorm statistics overflow: NaN NELBO
    summary = read_summary(tmp_path / "run")
    assert summary["status"] == "failed" and summary["test/nelbo_bpd"] is None
    assert summary["test/acc"] == pytest.approx(0.1, abs=0.02)  # chance, recorded as it was measured


def test_ramps_longer_than_the_run_are_warned_about(train_cfg):
    with pytest.warns(UserWarning) as warned:
        train(train_cfg("trainer.max_steps=10", "model.alpha_schedule={ramp_steps:40}", "model.kl_warmup_steps=20"))
    messages = [str(w.message) for w in warned]
    assert "model.alpha_schedule.ramp_steps=40 is longer than the run (10 steps): it ends 25% of the way up the ramp" in messages
    assert "model.kl_warmup_steps=20 is longer than the run (10 steps): it ends 50% of the way up the ramp" in messages


def test_an_experiment_file_without_its_package_header_is_refused(train_cfg, tmp_path):
    (tmp_path / "mine" / "experiment").mkdir(parents=True)
    (tmp_path / "mine" / "experiment" / "short.yaml").write_text("model:\n  alpha: 0.3\n")  # no `# @package _global_`
    cfg = train_cfg(f"hydra.searchpath=[file://{tmp_path / 'mine'}]", "experiment=short")
    assert cfg.model.alpha == 0.9 and cfg.experiment.model.alpha == 0.3  # Hydra put it where nothing reads it
    with pytest.raises(ValueError, match="experiment=short: its settings landed under experiment.*# @package _global_"):
        train(cfg)
    assert read_summary(tmp_path / "run")["status"] == "failed"


def test_paths_count_from_where_the_run_was_launched_also_after_hydra_moved_into_its_run_dir(
    train_cfg, tmp_path, image_folder_root, monkeypatch
):
    launch = tmp_path / "launch"
    launch.mkdir()
    (launch / "my_images").symlink_to(image_folder_root)
    folder = ("data=image_folder", "data.root=my_images", "data.image_size=8", "data.source_options.channels=1")
    for overrides, outcome in [
        ((*folder, "data.train_transforms=[]", "trainer.max_steps=10"), contextlib.nullcontext()),
        (("ckpt_path=runs/x/last.ckpt",), pytest.raises(FileNotFoundError, match=f"no checkpoint at {launch}/runs/x/last.ckpt")),
    ]:
        monkeypatch.chdir(launch)
        cfg = train_cfg(*overrides, "hydra.job.chdir=true")
        (tmp_path / "run").mkdir(exist_ok=True)
        monkeypatch.chdir(tmp_path / "run")  # as hydra.job.chdir=true does
        with outcome:
            assert train(cfg)["status"] == "completed"


def test_a_run_without_logger_or_callbacks_still_tests_and_writes_its_summary(tmp_path):
    cfg = compose_train("logger=none", "callbacks=none", "trainer.max_steps=10", "trainer.val_check_interval=10", output_dir=tmp_path)
    summary = train(cfg)
    assert summary["status"] == "completed" and summary["test/acc"] is not None and summary["best_checkpoint"] is None
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["labeled_indices.json", "metrics.json"]


def test_logger_none_alone_trains_with_the_default_callbacks(tmp_path):
    """The README's ``logger=none``: it also drops the learning-rate monitor, which needs a logger."""
    summary = train(compose_train("logger=none", "trainer.max_steps=10", "trainer.val_check_interval=10", output_dir=tmp_path))
    assert summary["status"] == "completed" and Path(summary["best_checkpoint"]).is_file()


def test_multirun_gives_one_run_directory_per_job_and_each_split_seed_its_own_labels(digits_multirun, digits):
    summaries = [read_summary(digits_multirun / str(job)) for job in range(4)]
    assert sorted((s["alpha"], s["split_seed"]) for s in summaries) == [(0.9, 0), (0.9, 1), (1.0, 0), (1.0, 1)]
    assert all(s["status"] == "completed" and s["global_step"] == 10 for s in summaries)
    labeled = {}
    for job, summary in enumerate(summaries):
        split = json.loads((digits_multirun / str(job) / LABELED_INDICES_FILE).read_text())
        labeled.setdefault(summary["split_seed"], []).append(split["labeled"])
    (seed_0,), (seed_1,) = ({tuple(indices) for indices in labeled[seed]} for seed in (0, 1))  # whatever alpha
    assert seed_0 != seed_1 and len(seed_0) == len(seed_1) == 100
    assert {int(digits.train.labels[i]) for i in seed_0} == set(range(10))


def test_the_joblib_launcher_runs_a_sweeps_jobs_side_by_side_as_the_default_launcher_would(digits_multirun, tmp_path):
    sweep = run_quick_sweep(
        tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "model.alpha=1.0,0.9", "data.split_seed=0,1",
        "seed=${data.split_seed}",
    )  # fmt: skip
    for job in range(4):
        side_by_side, one_by_one = read_summary(sweep / str(job)), read_summary(digits_multirun / str(job))
        assert side_by_side["status"] == "completed" and side_by_side["global_step"] == 10
        assert (side_by_side["alpha"], side_by_side["split_seed"]) == (one_by_one["alpha"], one_by_one["split_seed"])
        split_files = [path / str(job) / LABELED_INDICES_FILE for path in (sweep, digits_multirun)]
        assert split_files[0].read_text() == split_files[1].read_text()
        # the same training, but one thread a worker instead of two: sums in another order
        assert side_by_side["test/acc"] == pytest.approx(one_by_one["test/acc"], abs=0.02)


def test_alpha_sweep_trains_on_weak_and_strong_views_and_tests_with_the_label_graph(train_cfg, fashion_idx_dir, tmp_path):
    # fashion_idx_dir: a real Fashion-MNIST subset where Debian's package is installed, else upscaled digits
    cfg = train_cfg("experiment=alpha_sweep", f"data.root={fashion_idx_dir}", "data.val_per_class=10", "model.alpha=0.9")
    summary = train(cfg)
    assert summary["status"] == "completed" and summary["classify_with"] == "graph"
    assert summary["test/acc_head"] is not None  # logged beside test/acc only when the label graph classifies
    (metrics_csv,) = (tmp_path / "run").rglob("metrics.csv")
    with metrics_csv.open() as f:
        logged = list(csv.DictReader(f))
    for key in ("train/consistency", "train/mask_rate", "train/nelbo_bpd"):  # the Trainer made both views
        assert any(row.get(key) for row in logged), key


def test_metrics_json_keeps_epoch_metrics_as_standard_json_numbers():
    logged = {
        "val/acc": torch.tensor(0.5), "train/loss": torch.tensor(float("nan")), "test/nelbo_bpd": float("inf"),
        "train/loss_step": torch.tensor(1.0), "train/acc_epoch": 0.3, "lr-AdamW": 0.001,
    }  # fmt: skip
    assert plain_metrics(logged) == {"val/acc": 0.5, "train/loss": None, "test/nelbo_bpd": None}


def test_the_cli_hands_sweepers_the_validation_accuracy_never_the_tests(train_cfg, tmp_path):
    """What Hydra's optimising sweepers (Optuna, Nevergrad) maximise: choosing settings by test/acc would fit them
    to the test set."""
    returned = main(train_cfg(output_dir=tmp_path / "tested"))
    summary = read_summary(tmp_path / "tested")
    assert returned == summary["val/acc_as_tested"] and "test/acc" in summary
    assert main(train_cfg("test=false", output_dir=tmp_path / "untested")) == read_summary(tmp_path / "untested")["val/acc_best"]
