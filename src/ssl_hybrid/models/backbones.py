"""The shared encoder: any timm model as a feature extractor (``create_backbone``), and small CNNs registered as
timm models, so ``model.backbone.name`` treats them like any timm architecture.

The small CNNs are the CPU-friendly defaults for small images (8x8 digits to 32x32): two 2x poolings, then a global
pool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import timm
import torch
from timm.layers import ClassifierHead
from timm.models import build_model_with_cfg, generate_default_cfgs, parse_model_name, register_model
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


def create_backbone(image_channels: int, name: str, **timm_kwargs: Any) -> nn.Module:
    """Any timm model as a feature extractor (``num_classes=0``: pooled features of width ``num_features``).
    ``pretrained=True`` fetches weights from the hub unless ``pretrained_cfg_overlay={"file": path}`` names a
    local file; weights that fit none of the model's parameters are refused. ``name`` may also be a model with
    its weights on the hub or in a folder (``hf-hub:timm/...``, ``local-dir:PATH``), as timm takes it."""
    source, _ = parse_model_name(name)  # refuses a path or repo id without its source prefix
    if source is None and not timm.is_model(name):
        raise ValueError(
            f"model.backbone.name={name!r} is not a timm model (see timm.list_models()); a model of your own is one "
            "once registered with timm's @register_model in a module that imports=[...] names"
        )
    pretrained = timm_kwargs.get("pretrained")
    weights_file = (timm_kwargs.get("pretrained_cfg_overlay") or {}).get("file")
    if weights_file and not pretrained:  # timm would ignore the file and start from random weights
        raise ValueError("model.backbone.pretrained_cfg_overlay.file is read only with model.backbone.pretrained=true")
    if weights_file and not Path(weights_file).expanduser().is_file():
        raise FileNotFoundError(f"model.backbone.pretrained_cfg_overlay.file: no file at {weights_file}")
    try:
        if pretrained:  # the same initial values as the pretrained build below, to see what it loaded
            with torch.random.fork_rng(devices=[]):
                initial = timm.create_model(name, num_classes=0, in_chans=image_channels, **timm_kwargs | {"pretrained": False})
        backbone = timm.create_model(name, num_classes=0, in_chans=image_channels, **timm_kwargs)
    except TypeError as error:  # e.g. experiment=alpha_sweep's width (an ssl_cnn setting) with another backbone
        settings = ", ".join(f"model.backbone.{key}" for key in sorted(timm_kwargs)) or "none"
        raise ValueError(f"model.backbone.name={name} refuses the settings given to it ({settings}): {error}") from error
    except Exception as error:  # the hub unreachable, or no weights for this model
        if not pretrained:
            raise
        raise RuntimeError(
            f"model.backbone.pretrained=true: no weights for {name} ({type(error).__name__}: {error}). Without the "
            "hub, give timm a local file: +model.backbone.pretrained_cfg_overlay.file=PATH; or train from scratch: "
            "model.backbone.pretrained=false"
        ) from error
    check_model_api(backbone, name)
    if pretrained:
        check_weights_loaded(backbone, initial, f"{name}'s weights ({weights_file or 'from the hub'})")
    return backbone


def check_model_api(backbone: nn.Module, name: str) -> None:
    """Refuses a backbone without the parts of timm's model API that the modules read: ``num_features`` (the
    pooled features' width) and a ``pretrained_cfg`` with the input ``mean`` and ``std``."""
    missing = [] if isinstance(getattr(backbone, "num_features", None), int) else ["num_features (an int)"]
    cfg = getattr(backbone, "pretrained_cfg", None)
    if not (isinstance(cfg, dict) and "mean" in cfg and "std" in cfg):
        missing.append("pretrained_cfg with the input's mean and std")
    if missing:
        raise ValueError(
            f"model.backbone.name={name} lacks timm's model API: {' and '.join(missing)} (timm's build_model_with_cfg "
            "sets pretrained_cfg; see ssl_hybrid.models.backbones)"
        )


def check_weights_loaded(loaded: nn.Module, initial: nn.Module, weights: str) -> None:
    """timm loads pretrained weights into a model without its classifier leniently (``strict=False``): a file of
    another model leaves every parameter at its initial value, with only a log message. That is refused. (A
    partial load cannot be told this way: a file's normalisation weights may equal their initial ones and 0s.)"""
    initial_parameters = dict(initial.named_parameters())
    if all(torch.equal(p, initial_parameters[key]) for key, p in loaded.named_parameters()):
        raise ValueError(f"{weights} fit none of the backbone's parameters: are they another model's?")


def check_backbone_takes(backbone: nn.Module, image_shape: tuple[int, ...]) -> None:
    """Encodes one blank image, so that a backbone that cannot take the data's images (a transformer built for
    224 pixels, a network deeper than a small image allows) is refused before training, naming the settings."""
    backbone.eval()
    try:
        with torch.no_grad():
            backbone(torch.zeros(1, *image_shape))
    except Exception as error:
        name = backbone.pretrained_cfg.get("architecture", type(backbone).__name__)
        raise ValueError(
            f"model.backbone.name={name} cannot encode images of shape {image_shape}"
            f" (data.image_size): {type(error).__name__}: {str(error).rstrip('.')}. A transformer is built for one"
            " image size: give it the data's with +model.backbone.img_size=N"
        ) from error
    finally:
        backbone.train()


def without_pretrained_weights(backbone: dict[str, Any] | None) -> dict[str, Any]:
    """``model.backbone`` settings for a module whose weights a checkpoint will overwrite: the same architecture
    and input normalisation (``pretrained_cfg_overlay``'s mean and std), without fetching pretrained weights (a
    file that may have moved, the hub)."""
    settings = {**(backbone or {}), "pretrained": False}
    if settings.get("pretrained_cfg_overlay"):  # as create_backbone, a null overlay is none
        settings["pretrained_cfg_overlay"] = {k: v for k, v in settings["pretrained_cfg_overlay"].items() if k != "file"}
    return settings
