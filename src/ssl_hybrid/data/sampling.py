"""Samplers for the two training streams.

The unlabeled pool sets the epoch (one pass over it) and is sharded across processes like any distributed
dataset; the small labeled set is cycled and reshuffled so each step sees a full labeled batch, and every
process draws from the whole labeled set with its own stream.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class CyclingSampler(Sampler[int]):
    """Yields ``num_samples`` indices per epoch from back-to-back random permutations of ``range(size)``.

    The stream of epoch ``e`` on process ``rank`` depends only on ``(seed, rank, e)``, so resumed and
    distributed runs draw reproducible batches. Lightning calls ``set_epoch`` at the start of every epoch.
    """

    def __init__(self, size: int, num_samples: int, seed: int = 0, rank: int = 0) -> None:
        if size < 1:
            raise ValueError("CyclingSampler needs at least one index to cycle over")
        self.size, self.num_samples, self.seed, self.rank = size, num_samples, seed, rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(hash((self.seed, self.rank, self.epoch)) % 2**63)
        rounds = -(-self.num_samples // self.size)
        stream = torch.cat([torch.randperm(self.size, generator=generator) for _ in range(rounds)])
        return iter(stream[: self.num_samples].tolist())

    def __len__(self) -> int:
        return self.num_samples
