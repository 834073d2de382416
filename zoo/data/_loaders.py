"""The train and valid DataLoaders of a run, over epoch-seeded samplers."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zoo.data._preprocessing import Preprocessing
    from zoo.training import TrainConfig


class Loaders:
    """Train and valid DataLoaders over epoch-seeded samplers (``zoo.data._sampling``)."""

    def __init__(self, train, valid) -> None:
        self.train, self.valid = train, valid

    def set_epoch(self, epoch: int) -> None:
        self.train.sampler.set_epoch(epoch)
        self.valid.sampler.set_epoch(epoch)


def make_loaders(
    split,
    pre: Preprocessing,
    config: TrainConfig,
    device,
    rank: int = 0,
    world: int = 1,
    raw: tuple[str, ...] = (),
    once: tuple[str, ...] = (),
) -> Loaders:
    """Train and valid loaders of normalised images; the parts named in ``raw`` ("train",
    "valid") yield float32 pixels instead, for the pixel cache (``zoo.training.cache``); the
    workers of the parts in ``once``, which a cache serves after their first epoch, end with
    each pass (``_workers``)."""
    import torch
    from torch.utils.data import DataLoader

    from zoo.data._sampling import EpochSampler, seeded_dataset
    from zoo.data._transforms import ImageDataset, build_transform, decode_side

    common = {
        "batch_size": config.batch_size,
        "pin_memory": device.type == "cuda",
        # Workers' base seed from here, not from the global generator: starting an epoch
        # then draws nothing from it, with or without a loader (cached features).
        "generator": torch.Generator().manual_seed(config.seed),
    }
    train_set = ImageDataset(
        split.train,
        build_transform(pre, train=True, augment=config.augment, normalize="train" not in raw,
                        policy=config.augment_policy),
        min_side=decode_side(pre, train=True, augment=config.augment),
    )  # fmt: skip
    sampler = _train_sampler(split, config, rank, world)
    # A last batch of one image breaks BatchNorm in train mode: drop it then, and only then.
    lone = len(sampler) % config.batch_size == 1 and len(sampler) > 1
    train = DataLoader(
        seeded_dataset(train_set, config.seed), sampler=sampler, drop_last=lone,
        **_workers(config, device, len(sampler), "train" not in once), **common,
    )  # fmt: skip
    valid_set = ImageDataset(
        split.valid, build_transform(pre, train=False, normalize="valid" not in raw),
        min_side=decode_side(pre, train=False),
    )  # fmt: skip
    valid_sampler = EpochSampler(len(valid_set), shuffle=False, rank=rank, world=world, pad=False)
    valid = DataLoader(
        seeded_dataset(valid_set, config.seed), sampler=valid_sampler,
        **_workers(config, device, len(valid_sampler), "valid" not in once), **common,
    )  # fmt: skip
    return Loaders(train, valid)


def _workers(config: TrainConfig, device, images: int, every_epoch: bool = True) -> dict:
    """A loader's worker options: ``--workers``, else ``default_workers`` for its batches;
    kept from epoch to epoch only when the loader serves ``every_epoch``. Workers are forked
    from this process and share its memory copy-on-write: while they live, its first write to
    each page costs a copy. Kept alive past the epoch that fills a cache, they made resnet34's
    first cached epoch 1.2 s slower than the next ones (5.7 s against 4.5 s, 2-core CPU)."""
    batches = -(-images // config.batch_size)
    workers = default_workers(device, batches) if config.workers is None else config.workers
    return {"num_workers": workers, "persistent_workers": workers > 0 and every_epoch}


def _train_sampler(split, config: TrainConfig, rank: int, world: int):
    """The train part's sampler: shuffled, or --balanced draws."""
    from zoo.data._sampling import BalancedSampler, EpochSampler

    if config.balanced:
        labels = [label for _, label in split.train]
        return BalancedSampler(labels, seed=config.seed, rank=rank, world=world)
    return EpochSampler(len(split.train), seed=config.seed, rank=rank, world=world)


def train_steps(size: int, batch_size: int, world: int = 1) -> int:
    """Optimizer steps per epoch of ``make_loaders``' train loader over ``size`` images."""
    share = math.ceil(size / world)
    lone = share % batch_size == 1 and share > 1  # the lone last batch it drops
    return share // batch_size if lone else math.ceil(share / batch_size)


def batch_indices(loader) -> list[list[int]]:
    """The dataset indices of each batch ``loader`` yields this epoch, in order, without
    loading anything: for serving the same batches from a cache."""
    indices = loader.sampler.indices()
    size = loader.batch_size
    if loader.drop_last:
        indices = indices[: len(indices) // size * size]
    return [indices[i : i + size] for i in range(0, len(indices), size)]


def default_workers(device=None, batches: int | None = None) -> int:
    """DataLoader workers when ``--workers`` is not given.

    On a GPU (or MPS) the training step leaves the CPU free, so every core of this process's
    share but one decodes images: a GPU host with 16 cores and one process gets 15. On the
    CPU the step itself needs the cores: one is left to it and at most 4 decode. Never more
    than ``batches``, the batches a pass loads (a worker loads whole batches). Under torchrun
    the cores are shared among the machine's processes (``LOCAL_WORLD_SIZE``).

    >>> default_workers(torch.device("cuda"), batches=100)  # on a 16-core host
    15
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    share = (cores or 1) // max(1, int(os.environ.get("LOCAL_WORLD_SIZE") or 1))
    accelerated = device is not None and getattr(device, "type", device) in ("cuda", "mps")
    workers = share - 1 if accelerated else min(4, share - 1)
    if batches is not None:
        workers = min(workers, batches)
    return max(0, workers)
