"""``ssl-hybrid-predict ckpt_path=... images=PATH``: classifies image files with a trained model, as its run tested
it, and writes ``predictions.csv`` into the Hydra run directory: each file's predicted class, that class's
probability and every class's probability."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from ssl_hybrid.atomic_file import atomic_write
from ssl_hybrid.data.sources import IMAGE_SUFFIXES, decode_images, image_files
from ssl_hybrid.models.base import SemiSupervisedModule, load_module
from ssl_hybrid.settings import check_number, import_user_modules, user_path

log = logging.getLogger(__name__)

PREDICTIONS_FILE = "predictions.csv"


def find_images(path: Path) -> list[Path]:
    """``path`` itself if it is a file, else the image files below it."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"images: nothing at {path}")
    files = image_files(path)
    if not files:
        raise FileNotFoundError(f"images: no image files below {path} (suffixes {sorted(IMAGE_SUFFIXES)})")
    return files


@torch.no_grad()
def class_probabilities(model: SemiSupervisedModule, files: list[Path], batch_size: int) -> torch.Tensor:
    """(N, classes) probabilities of the image files, decoded to the model's image shape as ``image_folder``
    decodes them."""
    chunks = []
    for start in range(0, len(files), batch_size):
        images = decode_images(files[start : start + batch_size], model.image_shape).to(model.device)
        chunks.append(model(images).float().softmax(dim=-1).cpu())
    return torch.cat(chunks)


def write_predictions(path: Path, files: list[Path], probabilities: torch.Tensor, class_names: list[str]) -> None:
    """Written beside ``path`` and renamed into place, so a failed write leaves no file that looks complete."""
    best, predicted = probabilities.max(dim=-1)
    # surrogateescape: a file name that is not valid UTF-8 is written back as the bytes it was read from
    with atomic_write(path, newline="", encoding="utf-8", errors="surrogateescape") as out:
        writer = csv.writer(out)
        writer.writerow(["path", "prediction", "probability", *(f"p({name})" for name in class_names)])
        for file, label, p, row in zip(files, predicted.tolist(), best.tolist(), probabilities.tolist()):
            writer.writerow([str(file), class_names[label], f"{p:.6f}", *(f"{q:.6f}" for q in row)])


@hydra.main(version_base="1.3", config_path="pkg://ssl_hybrid.conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    check_number("batch_size", cfg.batch_size, integer=True, at_least=1)
    files = find_images(user_path(cfg.images))
    import_user_modules(cfg.imports)
    model = load_module(user_path(cfg.ckpt_path), map_location=cfg.device)
    if model.label_graph is not None and not model.label_graph.fitted:
        log.warning(
            "%s holds no fitted label graph, which its run classified with (model.classify_with=graph): these "
            "predictions come from its head; the checkpoint the run tested (checkpoints/best.ckpt) holds the graph",
            cfg.ckpt_path,
        )
    probabilities = class_probabilities(model, files, cfg.batch_size)
    out = Path(cfg.paths.output_dir) / PREDICTIONS_FILE
    write_predictions(out, files, probabilities, model.class_names)
    log.info("wrote %s: %d images classified", out, len(files))


if __name__ == "__main__":
    main()
