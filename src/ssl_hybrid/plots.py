"""Image grids shared by the training callback and ``ssl-hybrid-sample``."""

from __future__ import annotations

import math

import torch
from torchvision.utils import make_grid

MIN_CELL_PIXELS = 32  # images smaller than this are enlarged (nearest neighbour): 8x8 digits would be specks


def enlarged(images: torch.Tensor) -> torch.Tensor:
    factor = math.ceil(MIN_CELL_PIXELS / min(images.shape[-2:]))
    return images.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1) if factor > 1 else images


def samples_grid(samples: torch.Tensor, classes: int | None = None) -> torch.Tensor:
    """[0, 1] samples as one image: one column per class for samples that cycle through ``classes`` classes,
    otherwise (None or 0) a near-square grid."""
    columns = classes or max(1, round(math.sqrt(len(samples))))
    return make_grid(enlarged(samples.float().cpu()), nrow=columns, padding=1, pad_value=0.5)


def comparison_grid(images: torch.Tensor, reconstructions: torch.Tensor, columns: int = 16) -> torch.Tensor:
    """uint8 images above their [0, 1] reconstructions, ``columns`` per row pair, as one [0, 1] image."""
    originals = images.float().cpu() / 255.0
    reconstructions = reconstructions.float().cpu()
    columns = min(len(originals), columns)
    rows = [
        torch.cat([originals[i : i + columns], reconstructions[i : i + columns]]) for i in range(0, len(originals), columns)
    ]
    return make_grid(enlarged(torch.cat(rows)), nrow=columns, padding=1, pad_value=0.5)
