"""Callbacks for what Lightning does not already provide."""

from ssl_hybrid.callbacks.exact_resume import ExactResume
from ssl_hybrid.callbacks.generative_grids import GenerativeGrids
from ssl_hybrid.callbacks.latest_checkpoint import LatestCheckpoint

__all__ = ["ExactResume", "GenerativeGrids", "LatestCheckpoint"]
