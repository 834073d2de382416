"""Decoded images kept in memory: pixels that are the same every epoch are decoded once.

The valid images never change from epoch to epoch, and neither do the train images of a run
without random augmentation. When the feature cache (``FeatureCache``) does not already make
decoding moot, ``plan_image_cache`` keeps those parts' resized and cropped pixels as float32
tensors (``zoo.data.preprocess_module`` does not round them to whole levels), filled from the
loader during the first epoch; ``ImageCache.batches`` serves them from then on, normalised a
batch at a time on the device (``zoo.data.normalize_batch``: the same
floats as the per-image transform, bit for bit).

    >>> images, line = plan_image_cache(
    ...     config, split, pre, device, features=False, distributed=False)
    >>> loaders = make_loaders(split, pre, config, device, raw=images.parts)
    >>> for batch, targets in images.batches(loaders.valid, part="valid"):
    ...     logits = model(batch)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    import torch

    from zoo.data import DataSplit, Preprocessing
    from zoo.training._config import TrainConfig

PARTS = ("valid", "train")  # the order parts are given room under the cap

PIXEL_BYTES = 4  # float32 pixels, as the preprocessing module gives them before normalising


@dataclass
class ImageCache:
    """The float32 pixels of each cached part's images, by dataset index."""

    pixels: dict[str, torch.Tensor]  # part -> (images, C, H, W) float32, 0..255
    filled: dict[str, torch.Tensor]  # part -> (images,) bool: which rows hold pixels
    labels: dict[str, torch.Tensor]  # part -> (images,) each image's class
    datasets: dict  # part -> ImageDataset of float32 pixels, for rows the loader left out
    pre: Preprocessing
    device: torch.device

    @property
    def parts(self) -> tuple[str, ...]:
        """The parts whose loaders must yield float32 pixels (``make_loaders(raw=...)``)."""
        return tuple(self.pixels)

    def batches(self, loader, *, part: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(normalised images on the device, targets) in ``loader``'s order. The first epoch
        takes them from the loader and stores them; later ones serve them from memory,
        decoding only an image the first epoch left out (a dropped lone last batch)."""
        import torch

        from zoo.data import batch_indices, normalize_batch

        pixels, filled, labels = self.pixels[part], self.filled[part], self.labels[part]
        rows = [torch.tensor(batch) for batch in batch_indices(loader)]
        if filled.any():
            needed = torch.cat(rows)
            for index in needed[~filled[needed]].unique().tolist():
                pixels[index], filled[index] = self.datasets[part][index][0], True
            batches = ((pixels[r], labels[r]) for r in rows)
        else:
            batches = self._fill(rows, loader, pixels, filled)
        for images, targets in batches:
            yield normalize_batch(images.to(self.device, non_blocking=True), self.pre), targets

    @staticmethod
    def _fill(rows, loader, pixels, filled):
        for r, (images, targets) in zip(rows, loader, strict=True):
            pixels[r], filled[r] = images, True
            yield images, targets


def plan_image_cache(
    config: TrainConfig,
    split: DataSplit,
    pre: Preprocessing,
    device: torch.device,
    *,
    features: bool,
    distributed: bool,
) -> tuple[ImageCache | None, str | None]:
    """An ImageCache for the parts of this run whose pixels repeat, or None; and a line for
    the user when it caches or when the cap leaves a repeating part out, else None.

    Nothing is cached when the feature cache runs (no image is decoded twice then) or under
    torchrun (each process would hold a share that changes every epoch). The valid part comes
    first, then train without ``--augment``, each only if it fits the cap with what comes
    before it (``cap_bytes``, ``$ZOO_FEATURE_CACHE_MB``).
    """
    if features or distributed:
        return None, None
    from zoo.training.cache._features import CAP_ENV, cap_bytes

    samples = {"valid": split.valid, "train": [] if config.random_augmentation else split.train}
    per_image = math.prod(pre.input_size) * PIXEL_BYTES
    cap = cap_bytes()
    chosen, left_out = _fit_under(cap, samples, per_image)
    if not chosen:
        wanted = sum(len(samples[p]) for p in left_out) * per_image
        return None, _over_cap(cap, wanted)
    count = sum(len(s) for s in chosen.values())
    which = " and ".join(p for p in reversed(PARTS) if p in chosen)
    line = (
        f"caching decoded images: {count} {which} images, "
        f"{count * per_image / 1e6:,.1f} MB in memory"
    )
    if left_out:
        line += f" (not {' and '.join(left_out)}: the cap is {cap / 1e6:,.1f} MB, ${CAP_ENV})"
    return _empty_cache(chosen, pre, device), line


def _over_cap(cap: int, wanted: int) -> str:
    from zoo.training.cache._features import CAP_ENV

    if not cap:
        return f"not caching decoded images: ${CAP_ENV} is 0"
    return (
        f"not caching decoded images: {wanted / 1e6:,.1f} MB is over the cap of "
        f"{cap / 1e6:,.1f} MB (${CAP_ENV})"
    )


def _fit_under(cap: int, samples: dict[str, list], per_image: int) -> tuple[dict, list[str]]:
    """The parts to cache, in ``PARTS`` order while they fit under ``cap``; and those left out."""
    total, chosen, left_out = 0, {}, []
    for part in PARTS:
        size = len(samples[part]) * per_image
        if not size:
            continue
        if total + size <= cap:
            chosen[part], total = samples[part], total + size
        else:
            left_out.append(part)
    return chosen, left_out


def _empty_cache(chosen: dict[str, list], pre: Preprocessing, device: torch.device) -> ImageCache:
    import torch

    from zoo.data import ImageDataset, build_transform, decode_side

    # Train without augmentation is the evaluation transform (zoo.data.build_transform).
    decode = build_transform(pre, train=False, normalize=False)
    side = decode_side(pre, train=False)
    return ImageCache(
        pixels={
            p: torch.empty(len(s), *pre.input_size, dtype=torch.float32) for p, s in chosen.items()
        },
        filled={p: torch.zeros(len(s), dtype=torch.bool) for p, s in chosen.items()},
        labels={p: torch.tensor([label for _, label in s]) for p, s in chosen.items()},
        datasets={p: ImageDataset(s, decode, side) for p, s in chosen.items()},
        pre=pre,
        device=device,
    )
