"""Reader for the IDX format of the original MNIST and Fashion-MNIST files (LeCun et al.)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

# The third byte of the magic number names the element type; MNIST-style files only use unsigned bytes.
_UNSIGNED_BYTE = 0x08


def read_idx(path: str | Path) -> torch.Tensor:
    """Read an IDX file (optionally gzipped) into a uint8 tensor of the shape stored in its header."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    if raw[2] != _UNSIGNED_BYTE:
        raise ValueError(f"{path}: only unsigned-byte IDX files are supported, got type code {raw[2]:#04x}")
    ndim = raw[3]
    header_end = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header_end], dtype=">u4"))
    data = np.frombuffer(raw, dtype=np.uint8, offset=header_end)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header promises shape {shape} but holds {data.size} values")
    return torch.from_numpy(data.reshape(shape).copy())
