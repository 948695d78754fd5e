from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from ssl_hybrid.data.sources import load_digits

# never online, whatever the developer's shell exports: the tests expect offline-run-* folders and no network
os.environ["WANDB_MODE"] = "offline"
for _credential in ("WANDB_API_KEY", "WANDB_BASE_URL"):
    os.environ.pop(_credential, None)
os.environ.setdefault("WANDB_SILENT", "true")

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
needs_fashion_mnist = pytest.mark.skipif(
    not FASHION_MNIST_DIR.is_dir(),
    reason=f"real Fashion-MNIST not installed at {FASHION_MNIST_DIR} (run `make fashion-mnist` as root)",
)

# A few seconds of training: enough steps to see learning, no progress bar noise.
QUICK = (
    "logger=csv",
    "trainer.max_steps=30",
    "trainer.val_check_interval=10",
    "callbacks.progress_bar=null",
    "+trainer.enable_model_summary=false",
)


def compose_train(*overrides: str, output_dir: Path | None = None) -> DictConfig:
    """The real ``conf/train.yaml`` with overrides, as ``ssl-hybrid-train`` would see it."""
    return compose_app("train", *overrides, output_dir=output_dir)


def compose_app(config_name: str, *overrides: str, output_dir: Path | None = None) -> DictConfig:
    """An entry config (``train``, ``predict`` ...) with overrides, as its command would see it, writing into
    ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_module("ssl_hybrid.conf", version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    if output_dir is not None:
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]  # the app sees only the task config; ${hydra:...} resolves through HydraConfig
    return cfg


def upscale(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 images resized to ``size`` x ``size`` (bilinear)."""
    resized = torch.nn.functional.interpolate(images.float(), size=(size, size), mode="bilinear")
    return resized.round().clamp(0, 255).byte()


def digits_batch(digits, n_labeled: int = 8, n_unlabeled: int = 16, channels: int = 1, size: int = 8) -> dict:
    """A training batch of real digits, as the DataModule hands it to ``training_step``; ``channels`` and
    ``size`` turn the digits into colour images of another size."""
    images = digits.train.images[: n_labeled + n_unlabeled]
    images = (upscale(images, size) if size != 8 else images).expand(-1, channels, -1, -1).contiguous()
    return {"labeled": (images[:n_labeled], digits.train.labels[:n_labeled]), "unlabeled": images[n_labeled:]}


@pytest.fixture
def deterministic_z(monkeypatch):
    """z = mu: an ELBO becomes a deterministic function that a test can recompute."""
    monkeypatch.setattr(torch, "randn_like", torch.zeros_like)


def image_key(image: torch.Tensor) -> bytes:
    """An image's bytes, to find it again after batching."""
    return bytes(image.numpy().tobytes())


def accuracy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """The fraction of rows of ``scores`` (logits or class probabilities) whose largest entry is at ``labels``."""
    return (scores.argmax(1) == labels).float().mean().item()


def served(loader) -> tuple[torch.Tensor, torch.Tensor]:
    """All images and labels of an evaluation loader, in its order."""
    images, labels = zip(*loader)
    return torch.cat(images), torch.cat(labels)


def fit_ready(datamodule, world_size: int = 1, rank: int = 0):
    """A datamodule whose train loader can be built without a Trainer (as rank ``rank`` of ``world_size``)."""
    datamodule.trainer = SimpleNamespace(world_size=world_size, global_rank=rank)
    return datamodule


def quiet(module):
    """A LightningModule whose ``training_step`` can run without a Trainer (logging switched off)."""
    module.log = module.log_dict = lambda *args, **kwargs: None
    return module


@pytest.fixture
def train_cfg(tmp_path):
    def make(*overrides: str, output_dir: Path | None = None) -> DictConfig:
        return compose_train(*QUICK, *overrides, output_dir=output_dir or tmp_path / "run")

    return make


@pytest.fixture(scope="session")
def digits():
    return load_digits()


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write uint8 data in the original IDX format (magic 0x0000 08 ndim, big-endian dims), gzipped by suffix."""
    import gzip

    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if path.suffix == ".gz":
        payload = gzip.compress(payload)
    path.write_bytes(payload)


@pytest.fixture(scope="session")
def fashion_idx_dir(tmp_path_factory, digits) -> Path:
    """A small Fashion-MNIST in the original IDX layout: a real subset when Debian's package is installed,
    else the real digits upscaled to 28x28."""
    out = tmp_path_factory.mktemp("fashion_idx")
    if FASHION_MNIST_DIR.is_dir():
        from ssl_hybrid.data.sources import load_fashion_mnist

        real = load_fashion_mnist(str(FASHION_MNIST_DIR))
        train_x, train_y = real.train.images[:1200, 0], real.train.labels[:1200]
        test_x, test_y = real.test.images[:300, 0], real.test.labels[:300]
    else:
        big, test_big = upscale(digits.train.images, 28), upscale(digits.test.images, 28)
        train_x, train_y, test_x, test_y = big[:, 0], digits.train.labels, test_big[:, 0], digits.test.labels
    write_idx(out / "train-images-idx3-ubyte.gz", train_x.numpy())
    write_idx(out / "train-labels-idx1-ubyte.gz", train_y.numpy().astype(np.uint8))
    write_idx(out / "t10k-images-idx3-ubyte", test_x.numpy())
    write_idx(out / "t10k-labels-idx1-ubyte", test_y.numpy().astype(np.uint8))
    return out


@pytest.fixture(scope="session")
def image_folder_root(tmp_path_factory, digits) -> Path:
    """Real digits written as PNG files in the image_folder layout, with nested unlabeled folders."""
    from PIL import Image

    def write_png(image: torch.Tensor, path: str) -> None:
        Image.fromarray(image[0].numpy(), mode="L").save(path)

    root = tmp_path_factory.mktemp("image_folder")
    images, labels = digits.train.images, digits.train.labels
    for i in range(len(labels)):
        if i < 300:
            folder = root / "labeled" / f"digit_{int(labels[i])}"
        elif i < 400:
            folder = root / "val" / f"digit_{int(labels[i])}"
        else:
            folder = root / "unlabeled" / f"batch_{i % 3}" / "deeper"
        folder.mkdir(parents=True, exist_ok=True)
        write_png(images[i], str(folder / f"{i}.png"))
    for i in range(200):
        folder = root / "test" / f"digit_{int(digits.test.labels[i])}"
        folder.mkdir(parents=True, exist_ok=True)
        write_png(digits.test.images[i], str(folder / f"{i}.png"))
    return root


def run_quick_sweep(root: Path, *overrides: str) -> Path:
    """``python -m ssl_hybrid.train -m OVERRIDES`` (10 steps a job) in a fresh process, as a user would run it;
    returns the sweep directory."""
    sweep = root / "sweep"
    result = subprocess.run(
        [sys.executable, "-m", "ssl_hybrid.train", "-m", *overrides, *QUICK, "trainer.max_steps=10", f"hydra.sweep.dir={sweep}"],
        cwd=root, env={**os.environ, "WANDB_MODE": "offline"}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep


@pytest.fixture(scope="session")
def digits_multirun(tmp_path_factory) -> Path:
    """A real, small sweep: alpha in {1.0, 0.9} x split_seed in {0, 1}, with the training seed following the split
    seed, as the README's sweeps write it."""
    return run_quick_sweep(
        tmp_path_factory.mktemp("multirun"), "model.alpha=1.0,0.9", "data.split_seed=0,1", "seed=${data.split_seed}"
    )
