"""Backbone (timm), VAE parts and the LightningModules. Never imports ``ssl_hybrid.data``."""

from ssl_hybrid.models import backbones  # noqa: F401  (registers the small CNNs with timm)
from ssl_hybrid.models.hybrid import HybridModule

__all__ = ["HybridModule"]
