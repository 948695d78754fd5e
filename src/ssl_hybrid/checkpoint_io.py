"""Checkpoints written next to their destination, then renamed into place.

Lightning writes a checkpoint to the system's temporary folder and moves it over the old one; when the checkpoints
live on another file system (scratch, NFS), that move is a copy over the previous checkpoint, so a disk that fills
up or a kill in mid-copy leaves neither the old checkpoint nor the new one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO


class SameFolderCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None) -> None:
        if "://" in str(path) or storage_options is not None:  # remote storage; Lightning's refusal of the options
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")  # hidden, and not a *.ckpt for whoever lists checkpoints
        try:
            with open(partial, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
