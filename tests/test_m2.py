"""Kingma et al.'s M2, the generative classifier and sampling, on real digits."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys

import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from conftest import QUICK, accuracy, compose_train, digits_batch, quiet
from ssl_hybrid.data.idx import read_idx
from ssl_hybrid.models import HybridModule, M2Module
from ssl_hybrid.models.base import MODULE_CLASS_KEY, load_module
from ssl_hybrid.run_record import RUN_RECORD_KEY
from ssl_hybrid.sample import draw_samples, first_test_images, write_grids
from ssl_hybrid.sample import main as sample_main
from ssl_hybrid.train import train


def test_m2_unlabeled_bound_matches_brute_force(digits, deterministic_z):
    torch.manual_seed(0)
    model = M2Module(10, (1, 8, 8), alpha=0.5, latent_dim=4, decoder_width=8, backbone={"name": "ssl_cnn_small", "width": 8})
    model.eval()
    images = digits.train.images[:3]
    with torch.no_grad():
        features = model.encode(images)
        logits = model.classifier(features)
        bound = model.unlabeled_terms(features, images, logits)[0]
        generative_logits = model.generative_logits(features, images)
        for n in range(len(images)):
            q = torch.softmax(logits[n], 0)
            expected = 0.0
            for y in range(10):
                terms = model.vae(features[n : n + 1], images[n : n + 1], torch.tensor([y]))
                minus_l = terms.nll + terms.kl + math.log(10)  # -L(x, y), p(y) = 1/10
                assert generative_logits[n, y].item() == pytest.approx(-minus_l.item(), rel=1e-5)
                expected += q[y] * (minus_l + torch.log(q[y]))
            assert bound[n].item() == pytest.approx(expected.item(), rel=1e-5)
            # Gibbs: for any q(y|x), -U(x) >= -log sum_y exp(L(x, y)), with equality at the true posterior
            assert bound[n].item() >= -torch.logsumexp(generative_logits[n], 0).item() - 1e-4


def test_m2_training_loss_is_alpha_times_ce_plus_one_minus_alpha_times_both_bounds(digits, deterministic_z):
    torch.manual_seed(0)
    model = M2Module(10, (1, 8, 8), alpha=0.5, latent_dim=4, decoder_width=8, backbone={"name": "ssl_cnn_small", "width": 8})
    model = quiet(model).eval()  # eval: each image's features do not depend on the rest of the batch
    batch = digits_batch(digits, n_labeled=4, n_unlabeled=3)
    (x_l, y_l), x_u = batch["labeled"], batch["unlabeled"]
    with torch.no_grad():
        ce = torch.nn.functional.cross_entropy(model(x_l), y_l)
        minus_l = []  # -L(x, y) of each labeled image, then -U(x) of each unlabeled one, image by image
        for x, y in zip(x_l, y_l):
            terms = model.vae(model.encode(x[None]), x[None], y[None])
            minus_l.append(terms.nll + terms.kl + math.log(10))
        for x in x_u:
            features = model.encode(x[None])
            q = torch.softmax(model.classifier(features)[0], 0)
            per_class = [model.vae(features, x[None], torch.tensor([y])) for y in range(10)]
            minus_l.append(sum(q[y] * (t.nll + t.kl + math.log(10) + torch.log(q[y])) for y, t in enumerate(per_class)))
        nelbo = torch.cat(minus_l).mean() / x_l[0].numel()
        for alpha in (0.25, 0.75):  # not 0.5, where alpha and 1 - alpha are the same
            model.hparams.alpha = alpha
            expected = alpha * ce + (1 - alpha) * nelbo
            assert model.training_step(batch, 0).item() == pytest.approx(expected.item(), rel=1e-5)


def test_m2_at_alpha_zero_keeps_the_labels_cross_entropy_off_the_encoder(digits):
    model = quiet(M2Module(10, (1, 8, 8), alpha=0.0, latent_dim=4, decoder_width=8))
    ce = []
    model.log_training_step = lambda logits, labels, values: ce.append(values["ce"])
    loss = model.training_step(digits_batch(digits), 0)
    encoder = list(model.backbone.parameters())
    assert all(g is None for g in torch.autograd.grad(ce[0], encoder, retain_graph=True, allow_unused=True))
    # the bound still trains the encoder, and q(y | x) through the unlabeled images' bound
    assert all(g is not None and g.any() for g in torch.autograd.grad(loss, encoder, retain_graph=True)[:2])
    assert torch.autograd.grad(loss - ce[0], model.classifier.weight)[0].any()  # alpha = 0: loss = NELBO + CE


@pytest.fixture(scope="module")
def m2_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("m2") / "run"
    cfg = compose_train(*QUICK, "model=m2", "model.alpha=0.5", "trainer.max_steps=200", "trainer.val_check_interval=100", output_dir=out)
    (out / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, out / ".hydra" / "config.yaml")  # as the Hydra CLI does
    return out, train(cfg)


def test_m2_trains_on_digits(m2_run):
    _, summary = m2_run
    assert summary["status"] == "completed" and summary["objective"] == "m2"
    assert summary["test/acc"] >= 0.6 and summary["test/nelbo_bpd"] > 0


def test_generative_classifier_is_repeatable_and_beats_chance_on_digits(m2_run, digits):
    out, summary = m2_run
    model = load_module(out / "checkpoints" / "best.ckpt")
    assert isinstance(model, M2Module)
    model.classify_with = "generative"
    with torch.no_grad():
        logits = model(digits.test.images)
        assert torch.equal(model(digits.test.images), logits)  # the same image gets the same class every time
    generative_acc = accuracy(logits, digits.test.labels)
    assert generative_acc > 0.5, generative_acc  # chance is 0.1


def test_validation_and_test_score_the_generative_classifier_when_it_classifies(m2_run, digits):
    """``classify_with=generative`` during a run: val/acc (which picks best.ckpt) and test/acc score it, not the head."""
    out, _ = m2_run
    model = load_module(out / "checkpoints" / "best.ckpt")
    images, labels = digits.test.images, digits.test.labels
    with torch.no_grad():
        head_acc = accuracy(model(images), labels)
        model.classify_with = "generative"
        generative_acc = accuracy(model(images), labels)
    loader = DataLoader(TensorDataset(images, labels), batch_size=100)
    encoded = []
    model.backbone.register_forward_hook(lambda *_: encoded.append(1))
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    (validated,) = trainer.validate(model, loader, verbose=False)
    assert validated["val/acc"] == pytest.approx(generative_acc) and generative_acc != head_acc
    assert len(encoded) == len(loader)  # the head, the ELBO and the generative classifier share one encoding


def test_generative_classifier_needs_a_class_conditional_model():
    with pytest.raises(ValueError, match="class-conditional"):
        HybridModule(10, (1, 8, 8), alpha=0.5, classify_with="generative")


def test_sample_grids_draw_the_asked_classes():
    torch.manual_seed(0)
    m2 = M2Module(10, (1, 8, 8), alpha=0.5).eval()
    grid = draw_samples(m2, 20)
    assert grid.shape == (20, 1, 8, 8) and 0.0 <= grid.min() and grid.max() <= 1.0
    torch.manual_seed(1)
    threes = draw_samples(m2, 5, label=3)
    for label, same in ((3, True), (4, False)):
        torch.manual_seed(1)  # the same z: only the label differs
        assert torch.equal(threes, m2.sample(5, torch.full((5,), label))) == same
    for label in (10, -1, "abc"):
        with pytest.raises(ValueError, match=rf"label must be an integer >= 0 and < 10, or null, got {label!r}"):
            draw_samples(m2, 5, label=label)
    blend = HybridModule(10, (3, 16, 16), alpha=0.5).eval()
    assert draw_samples(blend, 4).shape == (4, 3, 16, 16)
    with pytest.raises(ValueError, match="not class-conditional"):
        draw_samples(blend, 4, label=1)


def test_sample_cli_writes_sample_and_reconstruction_grids(m2_run, tmp_path):
    out, _ = m2_run
    result = subprocess.run(
        [sys.executable, "-m", "ssl_hybrid.sample", f"ckpt_path={out / 'checkpoints' / 'last.ckpt'}", "n=30",
         f"hydra.run.dir={tmp_path}"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "WANDB_MODE": "offline"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    samples = Image.open(tmp_path / "samples.png")
    assert samples.size == (10 * 33 + 1, 3 * 33 + 1)  # 10 classes per row, 3 rows of 8x8 images enlarged to 32x32, 1px padding
    reconstructions = Image.open(tmp_path / "reconstructions.png")
    assert reconstructions.size == (16 * 33 + 1, 4 * 33 + 1)  # 30 test images: 2 row pairs of 16 columns


def test_sample_cli_help_lists_its_own_settings_not_the_training_groups():
    result = subprocess.run([sys.executable, "-m", "ssl_hybrid.sample", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ssl-hybrid-sample ckpt_path=<run>/checkpoints/best.ckpt [n=64] [label=K]")
    assert "ckpt_path: ???" in result.stdout and "Configuration groups" not in result.stdout


@pytest.fixture
def sample_cli():
    """``ssl-hybrid-sample OVERRIDES`` in this process: Hydra's entry point runs a config it is handed."""

    def run(*overrides: str) -> None:
        GlobalHydra.instance().clear()
        with initialize_config_module("ssl_hybrid.conf", version_base="1.3"):
            cfg = compose("sample", overrides=list(overrides))
        sample_main(cfg)

    return run


def test_sample_cli_refuses_what_it_cannot_draw(sample_cli, m2_run, digits_multirun):
    out, _ = m2_run
    with pytest.raises(ValueError, match="n must be at least 1, got 0"):
        sample_cli(f"ckpt_path={out / 'checkpoints' / 'best.ckpt'}", "n=0")
    with pytest.raises(ValueError, match=f"{out} is a folder; give a checkpoint, e.g. .*best.ckpt"):
        sample_cli(f"ckpt_path={out}")
    jobs = sorted(digits_multirun.glob("*/.hydra/config.yaml"))
    discriminative = next(job.parent.parent for job in jobs if OmegaConf.load(job).model.alpha == 1)
    with pytest.raises(RuntimeError, match="no generative branch"):
        sample_cli(f"ckpt_path={discriminative / 'checkpoints' / 'best.ckpt'}")


def test_a_checkpoint_alone_still_finds_its_runs_test_images(m2_run, tmp_path):
    out, _ = m2_run
    alone = tmp_path / "elsewhere" / "checkpoints" / "best.ckpt"  # no .hydra/ beside it
    alone.parent.mkdir(parents=True)
    shutil.copy(out / "checkpoints" / "best.ckpt", alone)
    assert torch.equal(first_test_images(alone, 5), first_test_images(out / "checkpoints" / "best.ckpt", 5))
    written = write_grids(load_module(alone), alone, tmp_path / "grids", n=9, label=3)
    assert written == [tmp_path / "grids" / "samples.png", tmp_path / "grids" / "reconstructions.png"]
    assert Image.open(written[0]).size == (3 * 33 + 1, 3 * 33 + 1)  # one label: a 3x3 grid, not 10 class columns
    # a checkpoint from before runs recorded themselves: samples only
    checkpoint = torch.load(alone, weights_only=True)
    del checkpoint[RUN_RECORD_KEY]
    torch.save(checkpoint, alone)
    assert write_grids(load_module(alone), alone, tmp_path / "bare", n=9, label=3) == [tmp_path / "bare" / "samples.png"]


def test_reconstructions_read_the_runs_data_from_where_it_was_launched(fashion_idx_dir, tmp_path, monkeypatch):
    launched_in = tmp_path / "project"
    shutil.copytree(fashion_idx_dir, launched_in / "idx")
    hydra_dir = tmp_path / "run" / ".hydra"
    hydra_dir.mkdir(parents=True)
    OmegaConf.save(compose_train("data=fashion_mnist", "data.root=idx", "data.download=true"), hydra_dir / "config.yaml")
    OmegaConf.save({"hydra": {"runtime": {"cwd": str(launched_in)}}}, hydra_dir / "hydra.yaml")
    monkeypatch.chdir(tmp_path)  # not where the run was launched: ./idx is not here
    images = first_test_images(tmp_path / "run" / "checkpoints" / "best.ckpt", 5)
    (test_file,) = fashion_idx_dir.glob("t10k-images-idx3-ubyte*")
    assert torch.equal(images, read_idx(test_file)[:5, None])


def test_a_run_whose_data_has_moved_gets_samples_and_a_way_to_its_data(fashion_idx_dir, m2_run, tmp_path, caplog):
    checkpoint = tmp_path / "run" / "checkpoints" / "best.ckpt"
    checkpoint.parent.mkdir(parents=True)
    shutil.copy(m2_run[0] / "checkpoints" / "best.ckpt", checkpoint)
    (tmp_path / "run" / ".hydra").mkdir()
    OmegaConf.save(compose_train("data=fashion_mnist", f"data.root={tmp_path / 'gone'}"), tmp_path / "run" / ".hydra" / "config.yaml")
    written = write_grids(load_module(checkpoint), checkpoint, tmp_path / "grids", n=4, label=None)
    assert written == [tmp_path / "grids" / "samples.png"]
    assert "the run's data is not where it was" in caplog.text and "data_root=PATH" in caplog.text
    (test_file,) = fashion_idx_dir.glob("t10k-images-idx3-ubyte*")
    assert torch.equal(first_test_images(checkpoint, 5, data_root=str(fashion_idx_dir)), read_idx(test_file)[:5, None])
    with pytest.raises(FileNotFoundError, match="not found under"):  # a data_root given by hand must be right
        write_grids(load_module(checkpoint), checkpoint, tmp_path / "grids", n=4, label=None, data_root=str(tmp_path / "gone"))


def test_load_module_explains_files_that_are_not_checkpoints(tmp_path):
    (tmp_path / "notes.ckpt").write_text("not a checkpoint")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "weights.ckpt")
    with pytest.raises(ValueError, match="could not be read as a checkpoint"):
        load_module(tmp_path / "notes.ckpt")
    with pytest.raises(ValueError, match="no state_dict"):
        load_module(tmp_path / "weights.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")  # a Lightning checkpoint of another project
    with pytest.raises(ValueError, match="does not name its module class .*ssl-hybrid did not write it"):
        load_module(tmp_path / "foreign.ckpt")


@pytest.mark.parametrize("target", ["os:system", "ssl_hybrid.plots:samples_grid", "ssl_hybrid.models:Nothing"])
def test_load_module_imports_only_ssl_hybrid_models(target, tmp_path):
    torch.save({"state_dict": {}, MODULE_CLASS_KEY: target}, tmp_path / "odd.ckpt")
    with pytest.raises(ValueError, match="not an ssl_hybrid model"):
        load_module(tmp_path / "odd.ckpt")
