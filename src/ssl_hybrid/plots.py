"""Image grids shared by the training callback and ``ssl-hybrid-sample``."""

from __future__ import annotations

import math

import torch
from torchvision.utils import make_grid


def samples_grid(samples: torch.Tensor, classes: int | None = None) -> torch.Tensor:
    """[0, 1] samples as one image: one column per class for samples that cycle through ``classes`` classes,
    otherwise (None or 0) a near-square grid."""
    columns = classes or max(1, round(math.sqrt(len(samples))))
    return make_grid(samples.float().cpu(), nrow=columns, padding=1, pad_value=0.5)


def comparison_grid(images: torch.Tensor, reconstructions: torch.Tensor, columns: int = 16) -> torch.Tensor:
    """uint8 images above their [0, 1] reconstructions, ``columns`` per row pair, as one [0, 1] image."""
    originals = images.float().cpu() / 255.0
    reconstructions = reconstructions.float().cpu()
    columns = min(len(originals), columns)
    rows = [
        torch.cat([originals[i : i + columns], reconstructions[i : i + columns]]) for i in range(0, len(originals), columns)
    ]
    return make_grid(torch.cat(rows), nrow=columns, padding=1, pad_value=0.5)
