"""Every option of every config group composes with the real conf/train.yaml and instantiates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf
from pytorch_lightning import LightningModule, Trainer
from pytorch_lightning.strategies import DDPStrategy

from conftest import compose_train
from ssl_hybrid.data import SemiSupervisedDataModule
from ssl_hybrid.data.datamodule import apply_to_uint8
from ssl_hybrid.loggers import instantiate_loggers
from ssl_hybrid.run_record import run_settings
from ssl_hybrid.run_summary import RUN_FACTS, run_facts
from ssl_hybrid.train import instantiate_group

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ("data", "model", "trainer", "logger", "callbacks", "experiment", "paths", "hydra")


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_every_group_has_options():
    for group in GROUPS:
        assert options(group), f"conf/{group} has no options"


NATIVE_SIZE = {"digits": 8, "fashion_mnist": 28, "mnist": 28, "cifar10": 32, "svhn": 32, "stl10": 96, "image_folder": 32}


@pytest.mark.parametrize("option", options("data"))
def test_data_options(option, tmp_path):
    cfg = compose_train(f"data={option}", "data.root=" + str(tmp_path), output_dir=tmp_path)
    datamodule = instantiate(cfg.data, _convert_="all")
    assert isinstance(datamodule, SemiSupervisedDataModule) and datamodule.dataset == option
    images = torch.randint(0, 256, (4, 3, NATIVE_SIZE[option], NATIVE_SIZE[option]), dtype=torch.uint8)
    augmented = apply_to_uint8(datamodule.train_transform, images)
    assert augmented.shape == images.shape and augmented.dtype == torch.uint8 and not torch.equal(augmented, images)


@pytest.mark.parametrize("option", options("model"))
def test_model_options(option, tmp_path):
    cfg = compose_train(f"model={option}", output_dir=tmp_path)
    model = instantiate(cfg.model, num_classes=10, image_shape=[1, 8, 8], _convert_="all")
    assert isinstance(model, LightningModule) and model.objective == {"hybrid": "blend"}.get(option, option)


@pytest.mark.parametrize("option", options("trainer"))
def test_trainer_options(option, tmp_path):
    cfg = compose_train(f"trainer={option}", output_dir=tmp_path)
    assert cfg.trainer.use_distributed_sampler is False  # the datamodule shards the unlabeled pool itself
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        pytest.skip("composes; instantiating needs a GPU")
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert isinstance(trainer, Trainer)
    if option == "ddp_cpu":
        assert isinstance(trainer.strategy, DDPStrategy) and trainer.num_devices == 2


@pytest.mark.parametrize("option", options("data"))
def test_every_data_option_resolves_into_the_settings_a_checkpoint_records(option, tmp_path):
    """Data roots point into paths (``${paths.data_dir}``) and image_folder's transforms at data.image_size."""
    settings = run_settings(compose_train(f"data={option}", "data.image_size=32", "seed=3", output_dir=tmp_path))
    assert settings["data.dataset"] == option and settings["data.image_size"] == 32 and settings["seed"] == 3
    assert "data.root" not in settings and not any("${" in str(value) for value in settings.values())


@pytest.mark.parametrize("group", ["logger", "callbacks"])
def test_logger_and_callback_options(group, tmp_path):
    for option in options(group):
        cfg = compose_train(f"{group}={option}", output_dir=tmp_path)
        objects = instantiate_loggers(cfg.logger) if group == "logger" else instantiate_group(cfg.callbacks)
        assert (len(objects) == 0) == (option == "none")


@pytest.mark.parametrize("option", options("experiment"))
def test_experiment_options(option, tmp_path):
    cfg = compose_train(f"experiment={option}", output_dir=tmp_path)
    assert isinstance(instantiate(cfg.data, _convert_="all"), SemiSupervisedDataModule)
    assert isinstance(instantiate(cfg.model, num_classes=10, image_shape=[1, 8, 8], _convert_="all"), LightningModule)
    for key in HydraConfig.get().sweeper.params or {}:
        assert OmegaConf.select(cfg, key, default=KeyError) is not KeyError, f"experiment={option} sweeps {key}, a key no config has"


def test_paths_and_hydra_dirs_resolve(tmp_path):
    cfg = compose_train(output_dir=tmp_path)
    assert cfg.paths.output_dir == str(tmp_path)
    assert cfg.trainer.default_root_dir == str(tmp_path)
    assert cfg.callbacks.model_checkpoint.dirpath == f"{tmp_path}/checkpoints"


@pytest.mark.parametrize("project_root", ["", None, "/srv/project"])
def test_paths_follow_the_environment_and_an_empty_variable_counts_as_unset(monkeypatch, project_root):
    for variable in ("PROJECT_ROOT", "SSL_HYBRID_DATA_DIR"):
        if project_root is None:
            monkeypatch.delenv(variable, raising=False)
        else:
            monkeypatch.setenv(variable, project_root)
    cfg = compose_train()
    root = project_root or "."
    assert (cfg.paths.log_dir, cfg.paths.data_dir) == (f"{root}/logs", root if project_root else "./data")


@pytest.mark.parametrize(
    "override, key",
    [
        ("model.alpha=abc", "model.alpha"), ("model.latent_dim=0", "model.latent_dim"),
        ("model.alpha=1.0 model.latent_dim=0", "model.latent_dim"), ("model.decoder_width=1", "model.decoder_width"),
        ("model.alpha_schedule=100", "model.alpha_schedule"),
        ("model.alpha_schedule={ramp_steps:null}", "model.alpha_schedule.ramp_steps"),
        ("model.alpha_schedule={ramp:100}", "model.alpha_schedule"),
        ("model.kl_warmup_steps=-5", "model.kl_warmup_steps"),
        ("model.consistency_weight=-1", "model.consistency_weight"),
        ("model.consistency_mask=sofft", "model.consistency_mask"), ("model.teacher_ema=1.5", "model.teacher_ema"),
        ("model.teacher_ema=0.99", "model.teacher_ema"),  # without a consistency term
        ("model.optimizer.name=adamm", "model.optimizer.name"), ("model.optimizer.lr=0", "model.optimizer.lr"),
        ("model.optimizer.layer_decay=1.5", "model.optimizer.layer_decay"),
        ("model.scheduler.warmup_steps=-1", "model.scheduler.warmup_steps"),
        ("model=coupled model.coupling_scale=-1", "model.coupling_scale"),
        ("data.labels_per_class=0", "data.labels_per_class"), ("data.val_per_class=-5", "data.val_per_class"),
        ("data.split_seed=-1", "data.split_seed"), ("data.image_size=0", "data.image_size"),
        ("data.unlabeled_ratio=0.01", "data.unlabeled_ratio"),
        ("data.label_propagation={dims:10,neighbours:5}", "data.label_propagation"),  # a key missing
        ("data.label_propagation={dims:10,neighbours:5,blur:maybe}", "data.label_propagation.blur"),
        # the wrong type: a bare TypeError at the first comparison, without the key's name
        ("model.kl_warmup_steps=abc", "model.kl_warmup_steps"), ("model.optimizer.lr=fast", "model.optimizer.lr"),
        ("model.teacher_ema=true", "model.teacher_ema"), ("data.batch_size=8.5", "data.batch_size"),
        ("data.label_propagation={dims:10,neighbours:ten,blur:true}", "data.label_propagation.neighbours"),
        ("experiment=alpha_sweep model.backbone.name=resnet18", "model.backbone.width"),  # an ssl_cnn setting
        # the digits group's source_options do not fit another reader: the error names the group to choose
        ("data.dataset=mnist", "data.source_options"), ("data=mnist data.root=null", "data.root"),
        ("callbacks.generative_grids.every_n_validations=0", "callbacks.generative_grids.every_n_validations"),
        ("callbacks.generative_grids.num_images=0", "callbacks.generative_grids.num_images"),
    ],
)  # fmt: skip
def test_nonsense_settings_are_refused_before_any_data_is_read_naming_their_key(override, key, tmp_path):
    *choices, setting = override.split()
    cfg = compose_train(*choices, setting, output_dir=tmp_path)
    # the key itself, not a longer key it starts (data.label_propagation is not data.label_propagation.blur)
    with pytest.raises(InstantiationException, match=re.escape(key) + r"(?![\w.])"):
        if key.startswith("model."):
            instantiate(cfg.model, num_classes=10, image_shape=[1, 8, 8], _convert_="all")
        elif key.startswith("callbacks."):
            instantiate_group(cfg.callbacks)
        else:
            instantiate(cfg.data, _convert_="all")


def test_the_run_facts_of_metrics_json_are_the_settings_they_name():
    """Every value distinct, so a fact read from the wrong key shows."""
    cfg = compose_train(
        "data.labels_per_class=5", "data.val_per_class=7", "data.batch_size=16", "data.unlabeled_ratio=3", "data.split_seed=2",
        "seed=4", "model.alpha=0.7", "model.latent_dim=12", "model.consistency_weight=0.5", "model.consistency_mask=soft",
        "model.distribution_alignment=true", "model.teacher_ema=0.9", "model.alpha_schedule={ramp_steps:20}",
        "model.classify_with=head", "data.unlabeled_per_class=30",
    )
    expected = {
        "labels_per_class": 5, "unlabeled_per_class": 30, "batch_size": 16, "unlabeled_ratio": 3, "split_seed": 2, "seed": 4, "alpha": 0.7,
        "latent_dim": 12, "consistency_weight": 0.5, "consistency_mask": "soft", "distribution_alignment": True,
        "teacher_ema": 0.9, "alpha_schedule": "ramp_steps=20", "classify_with": "head", "dataset": "digits",
        "backbone": cfg.model.backbone.name, "label_propagation": None,
    }  # fmt: skip
    facts = run_facts(cfg)
    assert expected.keys() == RUN_FACTS.keys() - {"output_dir"}  # a new fact joins this test
    assert {name: facts[name] for name in expected} == expected
