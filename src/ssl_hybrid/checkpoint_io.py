"""Checkpoint files: written next to their destination, then renamed into place; read with a clear error.

Lightning writes a checkpoint to the system's temporary folder and moves it over the old one; when the checkpoints
live on another file system (scratch, NFS), that move is a copy over the previous checkpoint, so a disk that fills
up or a kill in mid-copy leaves neither the old checkpoint nor the new one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from ssl_hybrid.atomic_file import atomic_write


class SameFolderCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None) -> None:
        if "://" in str(path) or storage_options is not None:  # remote storage; Lightning's refusal of the options
            return super().save_checkpoint(checkpoint, path, storage_options)
        with atomic_write(path, "wb") as file:
            torch.save(checkpoint, file)


def read_checkpoint(ckpt_path: Path) -> dict[str, Any]:
    """A Lightning checkpoint's contents (tensors memory-mapped on the CPU), or an error that says what the file
    is not."""
    if ckpt_path.is_dir():
        raise ValueError(f"{ckpt_path} is a folder; give a checkpoint, e.g. {ckpt_path / 'checkpoints' / 'best.ckpt'}")
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"no checkpoint at {ckpt_path}")
    try:
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # torch.load fails in many ways on a file that is not a checkpoint
        raise ValueError(f"{ckpt_path} could not be read as a checkpoint ({type(error).__name__}: {error})") from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{ckpt_path} is not a Lightning checkpoint (no state_dict)")
    return checkpoint
