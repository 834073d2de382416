"""Training on cached features: the frozen prefix runs once per image, the suffix every epoch.

When a run freezes part of its backbone and feeds it the same pixels every epoch (no random
augmentation), the frozen part's outputs never change. ``plan_cache`` decides whether to
cache them and says why not when it does not; ``FeatureCache`` serves each phase's batches:
computed from the images (and stored) the first time, read from the store afterwards.

    >>> cache, why = plan_cache(config, model, samples, pre, precision, device, distributed=False)
    >>> for features, targets in cache.batches(loaders.train, part="train"):
    ...     loss = F.cross_entropy(cache.split.suffix(train=True)(*features), targets)
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from zoo.env import number

if TYPE_CHECKING:
    from collections.abc import Iterator

    import torch

    from zoo.compute import Precision
    from zoo.data import Preprocessing
    from zoo.training._config import TrainConfig
    from zoo.training.cache._split import Split
    from zoo.training.cache._store import FeatureStore

CAP_ENV = "ZOO_FEATURE_CACHE_MB"  # RAM the cache may take before it goes to half precision


@dataclass
class FeatureCache:
    """A model's frozen prefix and the store of its outputs, rows train then valid."""

    split: Split
    store: FeatureStore
    labels: torch.Tensor  # each row's class
    n_train: int
    device: torch.device
    precision: Precision
    dtypes: tuple[torch.dtype, ...]  # each boundary tensor's dtype as the prefix makes it
    reused: bool = False  # a complete store from an earlier run with the same key

    def batches(self, loader, *, part: str) -> Iterator[tuple[tuple[torch.Tensor, ...], object]]:
        """(features, targets) in ``loader``'s order; images are only decoded for rows not
        yet stored."""
        import torch

        from zoo.compute import autocast, to_device
        from zoo.data import batch_indices

        offset = 0 if part == "train" else self.n_train
        rows = [torch.tensor(batch) + offset for batch in batch_indices(loader)]
        if all(self.store.has(r) for r in rows):
            for r in rows:
                yield self._stored(r), self.labels[r]
            return
        for r, (images, targets) in zip(rows, loader, strict=True):
            with autocast(self.device, self.precision):
                features = self.split.features(to_device(images, self.device))
            if not self.store.has(r):
                self.store.put(r, features)
            yield features, targets

    def _stored(self, rows) -> tuple[torch.Tensor, ...]:
        # In the dtype the prefix made them (bf16 under bf16 autocast): the suffix then
        # computes what the whole model computes, so `zoo evaluate` gives the run's accuracy.
        return tuple(t.to(d) for t, d in zip(self.store.get(rows), self.dtypes, strict=True))


def plan_cache(
    config: TrainConfig,
    model,
    samples: list[tuple[str, int]],
    pre: Preprocessing,
    precision: Precision,
    device: torch.device,
    *,
    distributed: bool,
    n_train: int,
) -> tuple[FeatureCache | None, str]:
    """A FeatureCache for this run, or None; and the line that tells the user which and why.

    ``samples`` are the train then the valid (path, label) pairs: the store's rows.
    """
    why_not = _reason_not_to_cache(config, distributed)
    if not why_not and all(p.requires_grad for p in model.parameters()):
        why_not = f"nothing is frozen any more (--unfreeze-after {config.unfreeze_after})"
    if why_not:
        return None, f"not caching features: {why_not}"
    import torch

    from zoo.errors import NotSplittable
    from zoo.training.cache._split import split_frozen_prefix
    from zoo.training.cache._store import FeatureStore, cache_folder

    try:
        split = split_frozen_prefix(model, example=_example(pre, device))
    except NotSplittable as e:
        return None, f"not caching features: {e}"
    folder = cache_folder(_key(config, model, split, pre, samples, precision))
    shapes = split.boundary_shapes
    store = FeatureStore.open(folder, count=len(samples), shapes=shapes)
    labels = torch.tensor([label for _, label in samples])
    dtypes = _boundary_dtypes(split, pre, device, precision)
    if store is not None:
        cache = FeatureCache(split, store, labels, n_train, device, precision, dtypes, True)
        return cache, f"caching features: reusing the frozen part's outputs in {folder}"
    store = FeatureStore.create(len(samples), shapes, cap_bytes=cap_bytes(), folder=folder)
    where = f"in {folder}" if store.kind == "disk-fp16" else "in memory"
    return FeatureCache(split, store, labels, n_train, device, precision, dtypes), (
        f"caching features: the frozen part runs once per image, {store.nbytes / 1e6:,.1f} MB "
        f"{where} ({store.kind})"
    )


def _example(pre: Preprocessing, device: torch.device) -> torch.Tensor:
    """Two images to check the cut on, the same for every run of this size."""
    import torch

    _, height, width = pre.input_size
    example = torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(0))
    return example.to(device)


def _boundary_dtypes(split: Split, pre: Preprocessing, device, precision) -> tuple:
    """The dtype of each boundary tensor the prefix makes under the run's autocast: float32
    without one (zoo's models are float32, and the split was checked without autocast), else
    as a pass over the example makes them."""
    import torch

    from zoo.compute import autocast

    if precision.dtype is None:
        return tuple(torch.float32 for _ in split.boundary)
    with autocast(device, precision):
        return tuple(t.dtype for t in split.features(_example(pre, device)))


def _key(config: TrainConfig, model, split: Split, pre: Preprocessing, samples, precision) -> str:
    """What the frozen part's outputs depend on: a store made with another key is not reused."""
    from zoo.training.cache._store import cache_key, file_signature

    return cache_key(
        model=model.zoo_spec.id,
        weights=prefix_identity(split),
        freeze_until=config.freeze_until,
        preprocessing=pre.to_dict(),
        files=file_signature([path for path, _ in samples]),
        precision=precision.name,
        boundary=split.boundary,
        code=split.prefix.code,
        decode="draft",  # JPEGs decoded at reduced size where the input size allows it
    )


def _reason_not_to_cache(config: TrainConfig, distributed: bool) -> str | None:
    if config.cache_features is False:
        return "--no-cache-features"
    if not config.freeze_until:
        return "nothing is frozen (see --freeze-until)"
    if config.random_augmentation:
        flags = " ".join(config.no_random_augmentation())
        return f"random augmentation changes every epoch's input; pass {flags} to cache"
    if distributed:
        return "not under torchrun (each process would cache its own share)"
    return None


def prefix_identity(split: Split) -> str:
    """sha256 of the frozen prefix's parameters and buffers: what its outputs depend on."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(split.prefix.state_dict().items()):
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return f"sha256:{digest.hexdigest()}"


def cap_bytes() -> int:
    """$ZOO_FEATURE_CACHE_MB, else a quarter of the machine's memory, at most 4 GB."""
    megabytes = number(CAP_ENV)
    if megabytes is not None:
        return int(megabytes * 1e6)
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return min(total // 4, 4 << 30)
