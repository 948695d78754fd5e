"""Callbacks for what Lightning does not already provide."""

from ssl_hybrid.callbacks.generative_grids import GenerativeGrids

__all__ = ["GenerativeGrids"]
