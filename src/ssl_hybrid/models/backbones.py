"""Small CNNs registered as timm models, so ``model.backbone.name`` treats them like any timm architecture.

They are the CPU-friendly defaults for small images (8x8 digits to 32x32): two 2x poolings, then a global pool.
"""

from __future__ import annotations

import torch
from timm.layers import ClassifierHead
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn


def _conv_bn(in_chs: int, out_chs: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_chs, out_chs, 3, padding=1, bias=False), nn.BatchNorm2d(out_chs), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """stem -> [conv, pool] -> [conv, conv, pool] -> [conv] -> global pool -> linear head (timm model API)."""

    def __init__(
        self, num_classes: int = 1000, in_chans: int = 3, width: int = 32, global_pool: str = "avg", drop_rate: float = 0.0
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.stem = _conv_bn(in_chans, width)
        self.stages = nn.Sequential(
            nn.Sequential(_conv_bn(width, width), nn.MaxPool2d(2)),
            nn.Sequential(_conv_bn(width, 2 * width), _conv_bn(2 * width, 2 * width), nn.MaxPool2d(2)),
            nn.Sequential(_conv_bn(2 * width, 4 * width)),
        )
        self.num_features = self.head_hidden_size = 4 * width
        self.head = ClassifierHead(self.num_features, num_classes, pool_type=global_pool, drop_rate=drop_rate)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        return {"stem": r"^stem", "blocks": r"^stages\.(\d+)"}

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes, pool_type=global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _cfg(**kwargs) -> dict:
    # No hosted weights: pretrained=True needs pretrained_cfg_overlay={"file": ...}.
    return {
        "url": "", "num_classes": 1000, "input_size": (3, 32, 32), "pool_size": (8, 8), "crop_pct": 1.0,
        "interpolation": "bilinear", "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
        "first_conv": "stem.0", "classifier": "head.fc", **kwargs,
    }  # fmt: skip


default_cfgs = generate_default_cfgs({"ssl_cnn_small.untrained": _cfg(), "ssl_cnn_base.untrained": _cfg()})


def _create(variant: str, pretrained: bool, **kwargs) -> SmallCNN:
    return build_model_with_cfg(SmallCNN, variant, pretrained, **kwargs)


@register_model
def ssl_cnn_small(pretrained: bool = False, **kwargs) -> SmallCNN:
    """32-128 channels, 0.14M parameters."""
    return _create("ssl_cnn_small", pretrained, **{"width": 32, **kwargs})


@register_model
def ssl_cnn_base(pretrained: bool = False, **kwargs) -> SmallCNN:
    """64-256 channels, 0.56M parameters."""
    return _create("ssl_cnn_base", pretrained, **{"width": 64, **kwargs})
