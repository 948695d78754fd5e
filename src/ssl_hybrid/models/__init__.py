"""Backbone (timm), VAE parts and the LightningModules. Never imports ``ssl_hybrid.data``."""

from ssl_hybrid.models import backbones  # noqa: F401  (registers the small CNNs with timm)
from ssl_hybrid.models.base import SemiSupervisedModule
from ssl_hybrid.models.coupled import CoupledModule
from ssl_hybrid.models.hybrid import HybridModule
from ssl_hybrid.models.joint import JointModule
from ssl_hybrid.models.m2 import M2Module

__all__ = ["CoupledModule", "HybridModule", "JointModule", "M2Module", "SemiSupervisedModule"]
