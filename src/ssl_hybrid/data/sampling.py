"""Samplers and loaders for the two training streams.

The unlabeled pool sets the epoch (one pass over it) and is sharded across processes like any distributed
dataset; the small labeled set is cycled and reshuffled so each step sees a full labeled batch, and every
process draws from the whole labeled set with its own stream. Both streams resume mid-epoch where they stopped.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class CyclingSampler(Sampler[int]):
    """Yields ``num_samples`` indices per epoch from back-to-back random permutations of ``range(size)``.

    The stream of epoch ``e`` on process ``rank`` depends only on ``(seed, rank, e)``, so distributed runs draw
    reproducible batches and a resumed epoch is the interrupted one. Lightning calls ``set_epoch`` at the start of
    every epoch.
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


class SkippingSampler(Sampler[int]):
    """``sampler`` (whose order depends only on its epoch) with a pass that can start part-way through."""

    def __init__(self, sampler: Sampler[int]) -> None:
        self.sampler = sampler
        self.skip_next_pass = 0  # indices the next pass leaves out

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        skip, self.skip_next_pass = self.skip_next_pass, 0
        return itertools.islice(iter(self.sampler), skip, None)

    def __len__(self) -> int:
        return len(self.sampler)


class ResumableLoader(DataLoader):
    """A training DataLoader that resumes mid-epoch. Lightning saves the ``state_dict`` of every training loader
    that has one into its checkpoints and hands it back on resuming: here the number of batches of the current
    pass that were handed out. The pass after ``load_state_dict`` starts behind them; their indices are skipped
    at the sampler, so nothing is loaded for them. A batch whose step an exception stopped is given back
    (``ssl_hybrid.callbacks.exact_resume.ExactResume``), so that the resumed run trains it."""

    def __init__(self, dataset: Dataset, batch_size: int, sampler: Sampler[int], **kwargs: Any) -> None:
        super().__init__(dataset, batch_size=batch_size, sampler=SkippingSampler(sampler), drop_last=True, **kwargs)
        self.batches_handed_out = 0

    def __iter__(self) -> Iterator[Any]:
        self.batches_handed_out = self.sampler.skip_next_pass // self.batch_size
        if self.batches_handed_out:
            # a DataLoader draws a seed from the global generator as a pass starts; the run that was not stopped
            # drew this pass's before the batches skipped, so a resumed pass must not draw it again
            with torch.random.fork_rng(devices=[]):
                batches = super().__iter__()
        else:
            batches = super().__iter__()
        for batch in batches:
            self.batches_handed_out += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"batches_handed_out": self.batches_handed_out}

    def load_state_dict(self, state: dict[str, int]) -> None:
        # an epoch that had ended resumes at the start of the next
        self.sampler.skip_next_pass = state["batches_handed_out"] % len(self) * self.batch_size
