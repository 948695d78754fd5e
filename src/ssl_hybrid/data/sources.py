"""Dataset readers: each returns decoded uint8 images (N, C, H, W) and int64 labels, held in memory.

A reader receives ``root`` (where the files are), ``download`` (whether it may fetch them) and its own options
from ``data.source_options``. ``SOURCES`` maps the names used by ``data.dataset`` to readers.
"""

from __future__ import annotations

import inspect
import os
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torchvision.transforms import v2

from ssl_hybrid.data.idx import read_idx
from ssl_hybrid.settings import check_number

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class LabeledImages:
    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (len(self.images),):
            raise ValueError(f"{len(self.images)} images but labels of shape {tuple(self.labels.shape)}")
        if self.labels.dtype != torch.int64:
            raise ValueError(f"labels must be int64 (class indices), got {self.labels.dtype}")

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class DatasetSplits:
    """What a reader returns. ``train`` is the pool the labeled set (and, without ``val``, the validation set)
    is drawn from; its labels are never shown to the model outside the labeled set."""

    train: LabeledImages
    test: LabeledImages
    classes: tuple[str, ...]
    val: LabeledImages | None = None
    extra_unlabeled: torch.Tensor | None = None  # uint8 (M, C, H, W) images that come without labels

    def __post_init__(self) -> None:
        for name in ("train", "val", "test"):
            part = getattr(self, name)
            if part is not None and len(part) and not 0 <= part.labels.min() <= part.labels.max() < len(self.classes):
                raise ValueError(
                    f"the {name} labels run from {part.labels.min()} to {part.labels.max()}; they must index the "
                    f"{len(self.classes)} class names (0 to {len(self.classes) - 1})"
                )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])

    def resized(self, size: int) -> DatasetSplits:
        if self.image_shape[1:] == (size, size):
            return self
        resize = v2.Resize([size, size], antialias=True)

        def part(images: LabeledImages | None) -> LabeledImages | None:
            return None if images is None else LabeledImages(resize(images.images), images.labels)

        extra = None if self.extra_unlabeled is None else resize(self.extra_unlabeled)
        return replace(self, train=part(self.train), test=part(self.test), val=part(self.val), extra_unlabeled=extra)


def load_digits(root: str | None = None, download: bool = False, test_fraction: float = 0.25) -> DatasetSplits:
    """scikit-learn's bundled 8x8 digits (1797 real images, offline). The test split is fixed (seed 0) so that
    runs with different ``data.split_seed`` are scored on the same images."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    images = torch.from_numpy(np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=test_fraction, stratify=bunch.target, random_state=0
    )
    return DatasetSplits(
        train=LabeledImages(images[train_idx], labels[train_idx]),
        test=LabeledImages(images[test_idx], labels[test_idx]),
        classes=tuple(str(c) for c in range(10)),
    )


@contextmanager
def _torchvision_files(dataset: str, root: Path | str, download: bool) -> Iterator[None]:
    """Turns torchvision's errors for missing or corrupt files, or for a failed download, into ones that name the
    settings to change."""
    try:
        yield
    except (RuntimeError, OSError) as error:
        if download:
            raise RuntimeError(
                f"{dataset}: could not download into {root} ({type(error).__name__}: {error}). Without internet, "
                f"put the files there by other means, or set data.root to a folder that holds them."
            ) from error
        raise FileNotFoundError(
            f"{dataset}: no complete, intact copy under {root} ({error}). Set data.root to the folder that holds "
            f"it, or data.download=true to fetch it with torchvision."
        ) from error


def _find_idx_file(root: Path, stem: str) -> Path | None:
    # Debian's dataset-fashion-mnist and the original distribution keep the files in root; torchvision keeps
    # them under root/<ClassName>/raw.
    for folder in (root, *sorted(root.glob("*/raw"))):
        for name in (f"{stem}.gz", stem):
            if (folder / name).is_file():
                return folder / name
    return None


def _load_idx_dataset(root: str, download: bool, torchvision_cls: str, classes: tuple[str, ...]) -> DatasetSplits:
    root_path = Path(root).expanduser()
    stems = {
        "train_images": "train-images-idx3-ubyte",
        "train_labels": "train-labels-idx1-ubyte",
        "test_images": "t10k-images-idx3-ubyte",
        "test_labels": "t10k-labels-idx1-ubyte",
    }
    found = {key: _find_idx_file(root_path, stem) for key, stem in stems.items()}
    if not all(found.values()) and download:
        import torchvision.datasets

        with _torchvision_files(torchvision_cls, root_path, download):
            getattr(torchvision.datasets, torchvision_cls)(str(root_path), train=True, download=True)
            getattr(torchvision.datasets, torchvision_cls)(str(root_path), train=False, download=True)
        found = {key: _find_idx_file(root_path, stem) for key, stem in stems.items()}
    missing = [stems[key] for key, path in found.items() if path is None]
    if missing:
        raise FileNotFoundError(
            f"{torchvision_cls}: IDX files {missing} not found under {root_path}. Set data.root to the folder that "
            f"holds them, or data.download=true to fetch them with torchvision."
        )
    return DatasetSplits(
        train=LabeledImages(read_idx(found["train_images"]).unsqueeze(1), read_idx(found["train_labels"]).long()),
        test=LabeledImages(read_idx(found["test_images"]).unsqueeze(1), read_idx(found["test_labels"]).long()),
        classes=classes,
    )


FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


def load_fashion_mnist(root: str, download: bool = False) -> DatasetSplits:
    """Fashion-MNIST (Xiao et al. 2017) from the original IDX files, e.g. Debian's ``dataset-fashion-mnist``."""
    return _load_idx_dataset(root, download, "FashionMNIST", FASHION_MNIST_CLASSES)


def load_mnist(root: str, download: bool = False) -> DatasetSplits:
    return _load_idx_dataset(root, download, "MNIST", tuple(str(c) for c in range(10)))


def _hwc_to_chw(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).contiguous()


def load_cifar10(root: str, download: bool = False) -> DatasetSplits:
    from torchvision.datasets import CIFAR10

    with _torchvision_files("CIFAR10", root, download):
        train, test = (CIFAR10(root, train=flag, download=download) for flag in (True, False))
    return DatasetSplits(
        train=LabeledImages(_hwc_to_chw(train.data), torch.tensor(train.targets)),
        test=LabeledImages(_hwc_to_chw(test.data), torch.tensor(test.targets)),
        classes=tuple(train.classes),
    )


def load_svhn(root: str, download: bool = False) -> DatasetSplits:
    from torchvision.datasets import SVHN

    with _torchvision_files("SVHN", root, download):
        train, test = (SVHN(root, split=split, download=download) for split in ("train", "test"))
    return DatasetSplits(
        train=LabeledImages(torch.from_numpy(train.data), torch.from_numpy(train.labels).long()),
        test=LabeledImages(torch.from_numpy(test.data), torch.from_numpy(test.labels).long()),
        classes=tuple(str(c) for c in range(10)),
    )


def load_stl10(root: str, download: bool = False) -> DatasetSplits:
    """STL-10 with its real 100,000-image unlabeled split (Coates et al. 2011)."""
    from torchvision.datasets import STL10

    with _torchvision_files("STL10", root, download):
        splits = ("train", "test", "unlabeled")
        train, test, unlabeled = (STL10(root, split=split, download=download) for split in splits)
    return DatasetSplits(
        train=LabeledImages(torch.from_numpy(train.data), torch.from_numpy(train.labels).long()),
        test=LabeledImages(torch.from_numpy(test.data), torch.from_numpy(test.labels).long()),
        classes=tuple(train.classes),
        extra_unlabeled=torch.from_numpy(unlabeled.data),
    )


def image_files(folder: Path) -> list[Path]:
    """The image files below ``folder`` at any depth, by suffix, hidden ones skipped, in sorted order. Symlinked
    folders are followed, as torchvision's ImageFolder follows them; a folder reached twice is read once."""
    found, seen = [], set()
    for parent, folders, files in os.walk(folder, followlinks=True):
        if os.path.realpath(parent) in seen:  # a second link to it, or a link cycle
            folders.clear()
            continue
        seen.add(os.path.realpath(parent))
        folders[:] = [name for name in folders if not name.startswith(".")]
        paths = (Path(parent, name) for name in files if not name.startswith("."))
        found += [p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(found)


def _class_names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")}


def decode_images(paths: list[Path], shape: tuple[int, int, int]) -> torch.Tensor:
    """Image files as uint8 (N, C, H, W) of ``shape`` (C, H, W): grayscale or RGB, resized bilinearly."""
    from PIL import Image, ImageOps

    channels, height, width = shape

    def read(path: Path) -> np.ndarray:
        try:
            with Image.open(path) as image:
                ImageOps.exif_transpose(image, in_place=True)  # upright, as photo viewers show a camera's picture
                if image.mode.startswith("I;16") or image.mode == "I":  # 16-bit: PIL's convert would clip at 255
                    image = Image.fromarray(np.clip(np.asarray(image, dtype=np.int64) >> 8, 0, 255).astype(np.uint8))
                image = image.convert("L" if channels == 1 else "RGB")
                if image.size != (width, height):
                    image = image.resize((width, height), Image.Resampling.BILINEAR)
                return np.asarray(image).reshape(height, width, channels)
        except (OSError, Image.DecompressionBombError) as error:  # e.g. a truncated file: its error names no path
            raise ValueError(f"cannot read {path} as an image ({error})") from error

    if not paths:
        return torch.empty(0, *shape, dtype=torch.uint8)
    return _hwc_to_chw(np.stack([read(p) for p in paths]))


def _class_folder(folder: Path, classes: tuple[str, ...], shape: tuple[int, int, int]) -> LabeledImages:
    """The images of ``folder/<class>/`` for the classes of labeled/; refuses other class folders and no images."""
    unknown = _class_names(folder) - set(classes)
    if unknown:
        raise ValueError(f"image_folder: classes {sorted(unknown)} of {folder} have no folder in labeled/")
    paths, labels = [], []
    for label, name in enumerate(classes):
        files = image_files(folder / name)
        paths += files
        labels += [label] * len(files)
    if not paths:
        raise FileNotFoundError(f"image_folder: no images in {folder}/<class>/ (suffixes {sorted(IMAGE_SUFFIXES)})")
    return LabeledImages(decode_images(paths, shape), torch.tensor(labels, dtype=torch.long))


def load_image_folder(root: str | None, download: bool = False, channels: int = 3, image_size: int = 32) -> DatasetSplits:
    """A user's own images: ``root/labeled/<class>/*``, ``root/test/<class>/*``, optionally
    ``root/unlabeled/**`` (any nesting) and ``root/val/<class>/*``. Images are resized to ``image_size``."""
    if root is None:
        raise ValueError("data=image_folder needs data.root: the folder holding labeled/ and test/")
    if channels not in (1, 3):
        raise ValueError(f"image_folder: channels must be 1 or 3, got {channels}")
    check_number("data.image_size", image_size, integer=True, at_least=1)  # one size for images of any size
    root_path = Path(root).expanduser()
    for required in ("labeled", "test"):
        if not (root_path / required).is_dir():
            raise FileNotFoundError(f"image_folder: {root_path / required} is missing (expected <root>/{required}/<class>/*)")
    classes = tuple(sorted(_class_names(root_path / "labeled")))
    if not classes:
        raise FileNotFoundError(f"image_folder: no class folders in {root_path / 'labeled'}")
    if len(classes) == 1:
        raise ValueError(f"image_folder: one class folder ({classes[0]}) in {root_path / 'labeled'}: a classifier needs two or more")
    shape = (channels, image_size, image_size)
    train = _class_folder(root_path / "labeled", classes, shape)
    empty = [name for label, name in enumerate(classes) if not (train.labels == label).any()]
    if empty:
        raise ValueError(f"image_folder: class folders {empty} of {root_path / 'labeled'} hold no images")
    val_dir, unlabeled_dir = root_path / "val", root_path / "unlabeled"
    return DatasetSplits(
        train=train,
        test=_class_folder(root_path / "test", classes, shape),
        classes=classes,
        val=_class_folder(val_dir, classes, shape) if val_dir.is_dir() else None,
        extra_unlabeled=decode_images(image_files(unlabeled_dir), shape) if unlabeled_dir.is_dir() else None,
    )


SOURCES: dict[str, Callable[..., DatasetSplits]] = {
    "digits": load_digits,
    "fashion_mnist": load_fashion_mnist,
    "mnist": load_mnist,
    "cifar10": load_cifar10,
    "svhn": load_svhn,
    "stl10": load_stl10,
    "image_folder": load_image_folder,
}


def check_source_settings(dataset: str, root: str | None, source_options: dict[str, Any]) -> None:
    """Refuses ``data.root`` and ``data.source_options`` that ``data.dataset``'s reader cannot take, naming the keys
    (``data.dataset=mnist`` alone keeps the digits' ``source_options``; ``data=mnist`` swaps the whole group)."""
    parameters = inspect.signature(SOURCES[dataset]).parameters
    if not {"root", "download"} <= set(parameters):
        raise TypeError(f"the reader of data.dataset={dataset} must take root and download (see ssl_hybrid.data.sources)")
    options = [name for name, p in parameters.items() if name not in ("root", "download") and p.kind is not p.VAR_KEYWORD]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    unknown = [] if takes_any else sorted(set(source_options) - set(options))
    if unknown:
        raise ValueError(
            f"data.source_options {unknown} do not apply to data.dataset={dataset} (it takes {options or 'none'}); "
            f"to switch data sets, choose the config group: data={dataset}"
        )
    if root is None and parameters["root"].default is inspect.Parameter.empty:
        raise ValueError(f"data.dataset={dataset} needs data.root, the folder of its files")
