"""A user's own code, named by ``imports``: a model, a timm backbone and a data reader of their own train, and
their checkpoints predict and sample; what such code gets wrong is refused with what to change."""

from __future__ import annotations

import csv
import sys
import textwrap

import pytest
import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from conftest import compose_app
from ssl_hybrid.data.sources import SOURCES, DatasetSplits, LabeledImages, check_source_settings
from ssl_hybrid.models.base import load_module
from ssl_hybrid.models.hybrid import HybridModule
from ssl_hybrid.predict import main as predict_main
from ssl_hybrid.sample import main as sample_main
from ssl_hybrid.train import train

USER_PACKAGE = "ssl_hybrid_user_extension"
USER_CODE = '''
from torch import nn
from timm.models import register_model

from ssl_hybrid.data.sources import SOURCES, load_digits
from ssl_hybrid.models.hybrid import HybridModule


class RenamedBlend(HybridModule):
    objective = "renamed_blend"


class TinyMLP(nn.Module):
    def __init__(self, in_chans=1, num_classes=0, with_cfg=True, **kwargs):
        super().__init__()
        self.num_features = 32
        if with_cfg:
            self.pretrained_cfg = {"architecture": "user_tiny_mlp", "mean": (0.5,), "std": (0.25,)}
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(in_chans * 64, 32), nn.ReLU())

    def forward(self, x):
        return self.body(x)


@register_model
def user_tiny_mlp(pretrained=False, **kwargs):
    return TinyMLP(**kwargs)


@register_model
def user_bare_mlp(pretrained=False, **kwargs):
    return TinyMLP(with_cfg=False, **kwargs)


def load_user_digits(root=None, download=False, **options):
    return load_digits(**options)


SOURCES["user_digits"] = load_user_digits
'''


@pytest.fixture(scope="module")
def user_package(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user_code")
    (folder / f"{USER_PACKAGE}.py").write_text(textwrap.dedent(USER_CODE))
    sys.path.insert(0, str(folder))
    yield USER_PACKAGE
    sys.path.remove(str(folder))
    sys.modules.pop(USER_PACKAGE, None)
    SOURCES.pop("user_digits", None)  # timm keeps its registered models: there is no unregistering


def user_run_overrides(*extra: str) -> tuple[str, ...]:
    return (
        f"model._target_={USER_PACKAGE}.RenamedBlend", "model.backbone.name=user_tiny_mlp", "data.dataset=user_digits",
        "logger=csv", "trainer.max_steps=200", "trainer.val_check_interval=100", "callbacks.progress_bar=null", *extra,
    )  # fmt: skip


def test_a_users_model_backbone_and_reader_train_predict_and_sample(user_package, image_folder_root, tmp_path):
    with pytest.raises(InstantiationException, match=r"unknown data.dataset 'user_digits'.*imports=\[\.\.\.\]"):
        train(compose_app("train", *user_run_overrides(), output_dir=tmp_path / "without"))

    cfg = compose_app("train", *user_run_overrides(f"imports=[{user_package}]"), output_dir=tmp_path / "run")
    (tmp_path / "run" / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, tmp_path / "run" / ".hydra" / "config.yaml")  # as the Hydra CLI does
    summary = train(cfg)
    assert summary["status"] == "completed" and summary["objective"] == "renamed_blend"
    assert summary["test/acc"] > 0.5  # chance is 0.1
    best = tmp_path / "run" / "checkpoints" / "best.ckpt"

    sys.modules.pop(user_package)  # as in a new process: a checkpoint alone does not import the user's code
    with pytest.raises(ValueError, match=f"import {user_package} first \\(imports=\\[{user_package}\\]"):
        load_module(best)

    predict_main(compose_app("predict", f"ckpt_path={best}", f"images={image_folder_root / 'test'}",
                             f"imports=[{user_package}]", output_dir=tmp_path / "predicted"))  # fmt: skip
    with open(tmp_path / "predicted" / "predictions.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == len(list((image_folder_root / "test").rglob("*.png")))
    model = load_module(best)
    assert type(model).__name__ == "RenamedBlend" and type(model.backbone).__name__ == "TinyMLP"

    sample_main(compose_app("sample", f"ckpt_path={best}", "n=4", f"imports=[{user_package}]", output_dir=tmp_path / "drawn"))
    assert (tmp_path / "drawn" / "samples.png").is_file() and (tmp_path / "drawn" / "reconstructions.png").is_file()


def test_imports_that_fail_name_the_module(tmp_path):
    with pytest.raises(ImportError, match="imports: cannot import 'no_such_user_module'"):
        train(compose_app("train", "imports=[no_such_user_module]", "logger=csv", output_dir=tmp_path))


def test_a_backbone_without_timms_model_api_is_refused(user_package):
    __import__(user_package)
    with pytest.raises(ValueError, match="user_bare_mlp lacks timm's model API: pretrained_cfg with the input's mean and std"):
        HybridModule(10, (1, 8, 8), backbone={"name": "user_bare_mlp"})


def test_a_module_built_from_omegaconf_arguments_saves_a_checkpoint_that_loads(tmp_path):
    """Hydra's instantiate hands nested settings over as DictConfig/ListConfig unless told ``_convert_="all"``."""
    cfg = compose_app("train", "model.alpha=0.5", output_dir=tmp_path)
    datamodule = instantiate(cfg.data, _convert_="all")
    model = instantiate(cfg.model, num_classes=10, image_shape=[1, 8, 8])
    assert type(model.hparams.backbone).__name__ == "DictConfig"
    trainer = pl.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)  # fmt: skip
    trainer.fit(model, datamodule=datamodule)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    stored = torch.load(tmp_path / "model.ckpt", weights_only=True)["hyper_parameters"]
    assert stored["backbone"] == {"name": "ssl_cnn_small", "pretrained": False} and stored["image_shape"] == [1, 8, 8]
    assert load_module(tmp_path / "model.ckpt").hparams.alpha == 0.5


def test_a_readers_signature_and_labels_are_checked(digits, monkeypatch):
    monkeypatch.setitem(SOURCES, "no_download", lambda root=None: None)
    images, labels = digits.train.images, digits.train.labels
    with pytest.raises(ValueError, match="labels must be int64"):
        LabeledImages(images, labels.int())
    with pytest.raises(TypeError, match="the reader of data.dataset=no_download must take root and download"):
        check_source_settings("no_download", None, {})
    classes = tuple(str(k) for k in range(10))
    with pytest.raises(ValueError, match=r"the train labels run from 1 to 10; they must index the 10 class names"):
        DatasetSplits(train=LabeledImages(images, labels + 1), test=digits.test, classes=classes)
    with pytest.raises(ValueError, match=r"the test labels run from 0 to 9; they must index the 8 class names"):
        DatasetSplits(train=LabeledImages(images[labels < 8], labels[labels < 8]), test=digits.test, classes=classes[:8])
