"""Reproducible data order and augmentation, whatever the worker count, rank or resume.

The sampler yields ``(epoch, index)`` keys; the dataset seeds each image's augmentation from
(seed, epoch, index). So an epoch's batches and crops depend only on the seed and the epoch
number: not on how many workers load them, not on whether the run was resumed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919) % 2**62


class EpochSampler:
    """Shuffles (or not) from (seed, epoch) and takes this rank's share.

    With ``pad`` (training) every rank gets the same number of keys, repeating a few, as
    DistributedSampler does; without it (validation) the shares are disjoint and cover each
    image exactly once.
    """

    def __init__(
        self,
        size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world: int = 1,
        pad: bool = True,
    ) -> None:
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.rank, self.world, self.pad = rank, world, pad
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self) -> list[int]:
        import torch

        if self.shuffle:
            generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
            order = torch.randperm(self.size, generator=generator).tolist()
        else:
            order = list(range(self.size))
        if self.pad and self.world > 1:
            total = math.ceil(self.size / self.world) * self.world
            order += order[: total - self.size]
        return order[self.rank :: self.world]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter([(self.epoch, i) for i in self.indices()])

    def __len__(self) -> int:
        if self.pad and self.world > 1:
            return math.ceil(self.size / self.world)
        return len(range(self.rank, self.size, self.world))


def seeded_dataset(dataset, seed: int):
    """Wrap ``dataset`` so that item ``(epoch, i)`` is drawn with its own seeded randomness."""
    from torch.utils.data import Dataset

    class Seeded(Dataset):
        def __init__(self) -> None:
            self.dataset, self.seed = dataset, seed

        def __len__(self) -> int:
            return len(self.dataset)

        def __getitem__(self, key):
            import torch
            from torch.utils.data import get_worker_info

            epoch, index = key
            item_seed = (epoch_seed(self.seed, epoch) * 31 + index) % 2**62
            if get_worker_info() is not None:  # a worker's own generator: set it freely
                torch.manual_seed(item_seed)
                return self.dataset[index]
            with torch.random.fork_rng(devices=[]):  # the main process: leave its RNG alone
                torch.manual_seed(item_seed)
                return self.dataset[index]

    return Seeded()


class BalancedSampler(EpochSampler):
    """Each epoch draws ``len(labels)`` images with replacement, every class within one of the
    same count, from (seed, epoch); each rank takes its disjoint share of the draws."""

    def __init__(self, labels: list[int], *, seed: int = 0, rank: int = 0, world: int = 1):
        super().__init__(len(labels), seed=seed, rank=rank, world=world)
        self.labels = list(labels)

    def indices(self) -> list[int]:
        import torch

        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch) + 1)
        by_class = [[i for i, y in enumerate(self.labels) if y == c] for c in self._classes()]
        share, extra = divmod(self.size, len(by_class))
        bonus = set(torch.randperm(len(by_class), generator=generator)[:extra].tolist())
        draws = []
        for c, members in enumerate(by_class):
            count = share + (c in bonus)
            picks = torch.randint(len(members), (count,), generator=generator).tolist()
            draws += [members[p] for p in picks]
        order = [draws[i] for i in torch.randperm(len(draws), generator=generator).tolist()]
        if self.world > 1:
            total = math.ceil(self.size / self.world) * self.world
            order += order[: total - self.size]
        return order[self.rank :: self.world]

    def _classes(self) -> list[int]:
        return sorted(set(self.labels))
