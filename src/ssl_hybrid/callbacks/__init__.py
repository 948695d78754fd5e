"""Callbacks for what Lightning does not already provide."""

from ssl_hybrid.callbacks.reconstructions import ReconstructionGrid

__all__ = ["ReconstructionGrid"]
