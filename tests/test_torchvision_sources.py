"""CIFAR-10, SVHN, STL-10 and the IDX download path, read through torchvision from files in each data set's own
format that the tests write (real digits, in colour); downloads come from a web server on this machine. torchvision
checks every file against the MD5 of the published one; the tests point those checks at the files they wrote."""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import pickle
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from torchvision.datasets import CIFAR10, STL10, SVHN, FashionMNIST

from conftest import upscale
from ssl_hybrid.data.sources import load_cifar10, load_fashion_mnist, load_stl10, load_svhn
from ssl_hybrid.run_summary import LABELED_INDICES_FILE
from ssl_hybrid.train import train


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def with_md5s(files: list[list[str]], folder: Path) -> list[list[str]]:
    """A torchvision file list (``[name, md5]`` pairs) with the MD5 sums of the files written into ``folder``."""
    return [[name, md5(folder / name)] for name, _ in files]


def colour_digits(images: torch.Tensor, size: int) -> torch.Tensor:
    """Real 8x8 digits as (N, 3, size, size) uint8 colour images whose channels differ (digit, its negative, its
    mirror image), so that a reader that mixes up channel or axis order is caught."""
    grey = upscale(images, size)
    return torch.cat([grey, 255 - grey, grey.flip(-1)], dim=1)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def web_server(tmp_path, monkeypatch):
    """A web server on this machine serving the folder it returns, and its URL: torchvision's download code runs
    as it would with the real URLs."""
    www = tmp_path / "www"
    www.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(www)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    yield www, f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


def tar_gz(folder: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return archive


@pytest.fixture
def cifar10_files(tmp_path, digits, monkeypatch):
    """``cifar-10-batches-py`` as the published archive holds it: pickled batches of rows of R, G and B planes."""
    root = tmp_path / "cifar10"
    folder = root / CIFAR10.base_folder
    folder.mkdir(parents=True)
    images, labels = colour_digits(digits.train.images[:360], 32), digits.train.labels[:360]
    parts = {name: slice(60 * i, 60 * (i + 1)) for i, (name, _) in enumerate(CIFAR10.train_list + CIFAR10.test_list)}
    for name, part in parts.items():
        batch = {"data": images[part].reshape(-1, 3 * 32 * 32).numpy(), "labels": labels[part].tolist()}
        (folder / name).write_bytes(pickle.dumps(batch))
    classes = [f"class {c}" for c in range(10)]
    (folder / CIFAR10.meta["filename"]).write_bytes(pickle.dumps({CIFAR10.meta["key"]: classes}))
    monkeypatch.setattr(CIFAR10, "train_list", with_md5s(CIFAR10.train_list, folder))
    monkeypatch.setattr(CIFAR10, "test_list", with_md5s(CIFAR10.test_list, folder))
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5(folder / CIFAR10.meta["filename"])})
    return root, images, labels, classes


def test_cifar10_reader_reads_the_published_layout(cifar10_files):
    root, images, labels, classes = cifar10_files
    splits = load_cifar10(str(root))
    assert splits.image_shape == (3, 32, 32) and splits.classes == tuple(classes)
    assert torch.equal(splits.train.images, images[:300]) and torch.equal(splits.train.labels, labels[:300])
    assert torch.equal(splits.test.images, images[300:]) and torch.equal(splits.test.labels, labels[300:])


def test_cifar10_download_fetches_and_unpacks_the_archive(cifar10_files, web_server, tmp_path, monkeypatch):
    root, images, labels, _ = cifar10_files
    www, url = web_server
    archive = tar_gz(root / CIFAR10.base_folder, www / CIFAR10.filename)
    monkeypatch.setattr(CIFAR10, "url", url + archive.name)
    monkeypatch.setattr(CIFAR10, "tgz_md5", md5(archive))
    fresh = tmp_path / "fresh"
    splits = load_cifar10(str(fresh), download=True)
    assert (fresh / CIFAR10.filename).is_file()
    assert torch.equal(splits.train.images, images[:300]) and torch.equal(splits.test.labels, labels[300:])


def test_missing_files_and_a_failed_download_name_the_settings_to_change(web_server, tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"CIFAR10: no complete, intact copy under .*data\.download=true"):
        load_cifar10(str(tmp_path / "none"))
    _, url = web_server  # serving nothing: every request is answered 404
    monkeypatch.setattr(CIFAR10, "url", url + CIFAR10.filename)
    with pytest.raises(RuntimeError, match=r"CIFAR10: could not download into .*HTTPError.*set data\.root"):
        load_cifar10(str(tmp_path / "none"), download=True)
    monkeypatch.setattr(FashionMNIST, "mirrors", [url])
    with pytest.raises(RuntimeError, match=r"FashionMNIST: could not download into .*Error downloading"):
        load_fashion_mnist(str(tmp_path / "none"), download=True)


def test_a_cifar10_run_trains_on_the_files_it_finds(cifar10_files, train_cfg, tmp_path):
    root, _, labels, classes = cifar10_files
    data = ("data=cifar10", f"data.root={root}", "data.download=false", "data.labels_per_class=3")
    summary = train(train_cfg(*data, "data.val_per_class=3", "data.unlabeled_ratio=3", "trainer.max_steps=10"))
    assert summary["status"] == "completed" and summary["dataset"] == "cifar10"
    split = json.loads((tmp_path / "run" / LABELED_INDICES_FILE).read_text())
    assert split["classes"] == classes and split["labeled_labels"] == labels[split["labeled"]].tolist()


def test_svhn_reader_reads_the_published_mat_files(tmp_path, digits, monkeypatch):
    """SVHN's .mat files hold X as (height, width, channel, image) and the digit 0 as label 10."""
    images = colour_digits(digits.train.images[:120], 32)
    labels = digits.train.labels[:120]
    parts = {"train": slice(0, 80), "test": slice(80, 120)}
    split_list = dict(SVHN.split_list)
    for split, part in parts.items():
        url, filename, _ = SVHN.split_list[split]
        mat_labels = np.where(labels[part].numpy() == 0, 10, labels[part].numpy())[:, None].astype(np.uint8)
        scipy.io.savemat(tmp_path / filename, {"X": images[part].permute(2, 3, 1, 0).numpy(), "y": mat_labels})
        split_list[split] = [url, filename, md5(tmp_path / filename)]
    monkeypatch.setattr(SVHN, "split_list", split_list)
    splits = load_svhn(str(tmp_path))
    assert splits.image_shape == (3, 32, 32) and 0 in splits.train.labels
    assert torch.equal(splits.train.images, images[:80]) and torch.equal(splits.train.labels, labels[:80])
    assert torch.equal(splits.test.images, images[80:]) and torch.equal(splits.test.labels, labels[80:])


def test_stl10_reader_adds_the_unlabeled_split_to_the_pool(tmp_path, digits, monkeypatch):
    """STL-10's binary files store each image column by column, and labels from 1; its unlabeled split joins the
    pool of unlabeled images."""
    folder = tmp_path / STL10.base_folder
    folder.mkdir()
    images = colour_digits(digits.train.images[:90], 96)
    labels = digits.train.labels[:90]
    parts = {"train": slice(0, 40), "test": slice(40, 60), "unlabeled": slice(60, 90)}
    for split, part in parts.items():
        (folder / f"{split}_X.bin").write_bytes(images[part].transpose(2, 3).contiguous().numpy().tobytes())
        if split != "unlabeled":
            (folder / f"{split}_y.bin").write_bytes((labels[part] + 1).numpy().astype(np.uint8).tobytes())
    classes = [f"class {c}" for c in range(10)]
    (folder / STL10.class_names_file).write_text("\n".join(classes))
    monkeypatch.setattr(STL10, "train_list", with_md5s(STL10.train_list, folder))
    monkeypatch.setattr(STL10, "test_list", with_md5s(STL10.test_list, folder))
    splits = load_stl10(str(tmp_path))
    assert splits.image_shape == (3, 96, 96) and splits.classes == tuple(classes)
    assert torch.equal(splits.train.images, images[:40]) and torch.equal(splits.train.labels, labels[:40])
    assert torch.equal(splits.test.images, images[40:60]) and torch.equal(splits.test.labels, labels[40:60])
    assert torch.equal(splits.extra_unlabeled, images[60:])


def test_fashion_mnist_download_fetches_the_idx_files(fashion_idx_dir, web_server, tmp_path, monkeypatch):
    """torchvision's MNIST-style download from a mirror; the files land under root/FashionMNIST/raw, where the
    reader looks as well."""
    mirror, url = web_server
    resources = []
    for path in sorted(fashion_idx_dir.iterdir()):
        gz = mirror / (path.name if path.suffix == ".gz" else f"{path.name}.gz")
        gz.write_bytes(path.read_bytes() if path.suffix == ".gz" else gzip.compress(path.read_bytes()))
        resources.append((gz.name, md5(gz)))
    monkeypatch.setattr(FashionMNIST, "mirrors", [url])
    monkeypatch.setattr(FashionMNIST, "resources", resources)
    fresh = tmp_path / "fresh"
    downloaded = load_fashion_mnist(str(fresh), download=True)
    local = load_fashion_mnist(str(fashion_idx_dir))
    assert (fresh / "FashionMNIST" / "raw").is_dir()
    assert torch.equal(downloaded.train.images, local.train.images) and torch.equal(downloaded.test.labels, local.test.labels)
