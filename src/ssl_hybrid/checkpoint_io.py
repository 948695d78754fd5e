"""Checkpoints written next to their destination, then renamed into place.

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
