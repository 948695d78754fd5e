"""``ssl-hybrid-sample ckpt_path=... n=64 [label=K]``: a grid of samples from the prior (class-conditional where
the model has labels, one column per class) and a grid of test images above their reconstructions, as PNG files
in the Hydra run directory."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torchvision.utils import save_image

from ssl_hybrid.models.base import SemiSupervisedModule, load_module
from ssl_hybrid.plots import comparison_grid, samples_grid
from ssl_hybrid.run_record import run_hydra_files
from ssl_hybrid.settings import check_number, import_user_modules, user_path

log = logging.getLogger(__name__)


def draw_samples(model: SemiSupervisedModule, n: int, label: int | None = None) -> torch.Tensor:
    """``n`` samples as images in [0, 1]; class-conditional models cycle through the classes, or draw only
    ``label``."""
    check_number("label", label, integer=True, at_least=0, below=model.num_classes, nullable=True)
    return model.sample(n, None if label is None else torch.full((n,), label))


def first_test_images(ckpt_path: Path, n: int, data_root: str | None = None) -> torch.Tensor | None:
    """The first ``n`` test images of the data the checkpoint's run trained on, if its config is beside it or in
    the checkpoint's record. They are read from ``data_root`` if given, else from the run's ``data.root``: a
    relative one counts from the directory the run was launched in. Nothing is downloaded."""
    hydra_files = run_hydra_files(ckpt_path)
    if "config.yaml" not in hydra_files:
        return None
    data = OmegaConf.create(hydra_files["config.yaml"]).data
    root = data_root if data_root is not None else data.root
    if data_root is None and root is not None and not Path(root).is_absolute() and "hydra.yaml" in hydra_files:
        root = str(Path(OmegaConf.create(hydra_files["hydra.yaml"]).hydra.runtime.cwd) / root)
    datamodule = instantiate(data, root=root, download=False, _convert_="all")
    return datamodule.splits.test.images[:n]


def write_grids(
    model: SemiSupervisedModule, ckpt_path: Path, out_dir: Path, n: int, label: int | None, data_root: str | None = None
) -> list[Path]:
    samples = draw_samples(model, n, label)  # refuses a model without a generative branch
    cycling_classes = None if label is not None else model.vae.num_classes  # one label: no class columns
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "samples.png"]
    save_image(samples_grid(samples, cycling_classes), written[0])
    try:
        images = first_test_images(ckpt_path, n, data_root)
    except (OSError, RuntimeError) as error:  # torchvision's data sets say "Dataset not found" as a RuntimeError
        if data_root is not None:
            raise
        log.warning("the run's data is not where it was (%s): no reconstructions; data_root=PATH reads it from PATH", error)
        return written
    if images is None:
        log.warning("neither %s nor a .hydra/config.yaml beside it records its run's config: no reconstructions", ckpt_path)
    else:
        written.append(out_dir / "reconstructions.png")
        save_image(comparison_grid(images, model.reconstruct(images)), written[1])
    return written


@hydra.main(version_base="1.3", config_path="pkg://ssl_hybrid.conf", config_name="sample")
def main(cfg: DictConfig) -> None:
    if cfg.n < 1:
        raise ValueError(f"n must be at least 1, got {cfg.n}")
    pl.seed_everything(cfg.seed)
    import_user_modules(cfg.imports)
    ckpt_path = user_path(cfg.ckpt_path)
    model = load_module(ckpt_path)
    for path in write_grids(model, ckpt_path, Path(cfg.paths.output_dir), cfg.n, cfg.label, cfg.data_root):
        log.info("wrote %s", path)


if __name__ == "__main__":
    main()
