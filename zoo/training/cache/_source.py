"""Where each phase's batches come from, chosen once when a run is set up.

Three sources serve the same interface, so the trainer's epoch loop never asks which one runs:
the loaders' own batches; the frozen part's stored outputs (``FeatureCache``), for the suffix
of the model; or decoded pixels kept in memory (``ImageCache``), for the model itself.

    >>> source, lines = choose_batch_source(config, model, train_model, split, pre, precision,
    ...                                     device, distributed=False)
    >>> for phase in ("train", "valid"):
    ...     run(source.model(phase), source.batches(phase, getattr(loaders, phase)))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo.training.cache._features import plan_cache
from zoo.training.cache._pixels import plan_image_cache

if TYPE_CHECKING:
    from collections.abc import Iterable

    import torch

    from zoo.compute import Precision
    from zoo.data import DataSplit, Preprocessing
    from zoo.training._config import TrainConfig
    from zoo.training.cache._features import FeatureCache
    from zoo.training.cache._pixels import ImageCache


class BatchSource:
    """The loaders' own batches: images for the model (DDP-wrapped for training under
    torchrun, itself for validation)."""

    def __init__(self, train_model, valid_model) -> None:
        self._models = {"train": train_model, "valid": valid_model}

    @property
    def raw_parts(self) -> tuple[str, ...]:
        """The parts whose loaders must yield float32 pixels (``make_loaders(raw=...)``)."""
        return ()

    @property
    def served_parts(self) -> tuple[str, ...]:
        """The parts a cache serves once their first epoch filled it: their loaders are not
        needed every epoch (``make_loaders(once=...)``)."""
        return ()

    @property
    def reused(self) -> bool:
        """Every batch came from an earlier run's store: the model's frozen part never ran."""
        return False

    def model(self, phase: str):
        """The module that runs on ``phase``'s batches."""
        return self._models[phase]

    def batches(self, phase: str, loader) -> Iterable:
        """(inputs, targets) of ``phase`` this epoch, in ``loader``'s order."""
        return loader

    def compile(self) -> None:
        """``torch.compile`` each phase's module (``--compile``); the parameters stay shared,
        so the model trained and saved is the same. Compiling happens at the first step."""
        import torch

        self._models = {phase: torch.compile(m) for phase, m in self._models.items()}


class FeatureSource(BatchSource):
    """The frozen part's outputs, computed once per image, for the model's trainable suffix."""

    def __init__(self, cache: FeatureCache) -> None:
        super().__init__(cache.split.suffix_train, cache.split.suffix_eval)
        self.cache = cache

    @property
    def served_parts(self) -> tuple[str, ...]:
        return ("train", "valid")

    @property
    def reused(self) -> bool:
        return self.cache.reused

    def batches(self, phase: str, loader) -> Iterable:
        return self.cache.batches(loader, part=phase)


class PixelSource(BatchSource):
    """Decoded pixels kept in memory for the parts whose pixels repeat; the loader for others."""

    def __init__(self, images: ImageCache, train_model, valid_model) -> None:
        super().__init__(train_model, valid_model)
        self.images = images

    @property
    def raw_parts(self) -> tuple[str, ...]:
        return self.images.parts

    @property
    def served_parts(self) -> tuple[str, ...]:
        return self.images.parts

    def batches(self, phase: str, loader) -> Iterable:
        if phase in self.images.parts:
            return self.images.batches(loader, part=phase)
        return loader


def choose_batch_source(
    config: TrainConfig,
    model,
    train_model,
    split: DataSplit,
    pre: Preprocessing,
    precision: Precision,
    device: torch.device,
    *,
    distributed: bool,
) -> tuple[BatchSource, list[str]]:
    """The batch source of this run and the lines that tell the user which and why.

    The feature cache comes first (no image is decoded twice then); else the pixel cache for
    the parts whose pixels repeat; else the loaders. ``train_model`` is ``model`` as trained
    (DDP-wrapped under torchrun).
    """
    features, why = plan_cache(
        config,
        model,
        split.train + split.valid,
        pre,
        precision,
        device,
        distributed=distributed,
        n_train=len(split.train),
    )
    if features is not None:
        return FeatureSource(features), [why]
    images, line = plan_image_cache(
        config, split, pre, device, features=False, distributed=distributed
    )
    lines = [why] if line is None else [why, line]
    if images is None:
        return BatchSource(train_model, model), lines
    return PixelSource(images, train_model, model), lines
