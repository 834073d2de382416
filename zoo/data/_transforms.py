"""Turning decoded images into tensors: the run's resize, crop and normalisation."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from zoo.data._images import load_rgb
from zoo.errors import DataError

if TYPE_CHECKING:
    from zoo.data._preprocessing import Preprocessing


# ---------------------------------------------------------------- tensors


def build_transform(
    pre: Preprocessing,
    *,
    train: bool,
    augment: bool = True,
    normalize: bool = True,
    policy: str = "none",
) -> Callable:
    """The torchvision transform from an RGB PIL image to the normalised tensor a backbone expects.

    Evaluation resizes to ``pre.resize_size`` and centre-crops to the input size; training with
    ``augment`` takes a random resized crop and a random horizontal flip instead; training
    without it is the evaluation transform. Without ``normalize`` it stops at the uint8 pixels,
    which ``normalize_batch`` then turns into exactly the same floats, a batch at a time.
    A training ``policy`` (trivial, rand, auto, augmix: torchvision's TrivialAugmentWide,
    RandAugment, AutoAugment, AugMix) follows the crop and flip.

    Example:
        >>> t = build_transform(Preprocessing(input_size=(3, 224, 224)), train=False)
        >>> t(load_rgb("cat.jpg")).shape
        torch.Size([3, 224, 224])
    """
    import torch
    from torchvision.transforms import v2

    mode = _interpolation(pre.interpolation)
    height, width = pre.input_size[1], pre.input_size[2]
    if train and augment:
        geometry = [
            v2.RandomResizedCrop((height, width), interpolation=mode, antialias=True),
            v2.RandomHorizontalFlip(),
        ]
    else:
        # As timm does: a square input resizes the shorter side, a non-square one both sides.
        size = pre.resize_size if height == width else _resize_pair(pre)
        geometry = [
            v2.Resize(size, interpolation=mode, antialias=True),
            v2.CenterCrop((height, width)),
        ]
    if train and policy != "none":
        geometry.append(augment_policy(policy, mode))
    floats = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(pre.mean), list(pre.std))]
    return v2.Compose(
        geometry + [v2.ToImage()] + (floats if normalize else []) + [v2.ToPureTensor()]
    )


def augment_policy(name: str, interpolation=None) -> Callable:
    """torchvision's automatic augmentation policy ``name``: trivial, rand, auto or augmix."""
    from torchvision.transforms import InterpolationMode, v2

    mode = interpolation or InterpolationMode.BILINEAR
    if name == "augmix":
        return v2.AugMix(interpolation=mode)
    kinds = {"trivial": v2.TrivialAugmentWide, "rand": v2.RandAugment, "auto": v2.AutoAugment}
    return kinds[name](interpolation=mode)


def normalize_batch(images, pre: Preprocessing):
    """uint8 images (N, C, H, W) from ``build_transform(..., normalize=False)`` as the float32
    tensor ``build_transform`` gives: the same element-wise operations, so the same bits.

    Example:
        >>> normalize_batch(torch.stack([raw(load_rgb("cat.jpg"))]), pre).dtype
        torch.float32
    """
    import torch
    from torchvision.transforms.v2 import functional as F

    floats = F.to_dtype(images, torch.float32, scale=True)
    return F.normalize(floats, list(pre.mean), list(pre.std))


def _resize_pair(pre: Preprocessing) -> tuple[int, int]:
    return int(pre.input_size[1] / pre.crop_pct), int(pre.input_size[2] / pre.crop_pct)


def _interpolation(name: str) -> Any:
    from torchvision.transforms import InterpolationMode

    try:
        return InterpolationMode(name.lower())
    except ValueError:  # timm's "random" and other train-only modes: bilinear is its default too
        return InterpolationMode.BILINEAR


def __getattr__(name: str) -> Any:
    # ImageDataset subclasses torch's Dataset, so it is defined on first use: importing zoo.data
    # must not import torch. It is then cached here, which also keeps it picklable by name.
    if name == "ImageDataset":
        globals()[name] = cls = _define_image_dataset()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _define_image_dataset() -> type:
    from torch.utils.data import Dataset

    class ImageDataset(Dataset):
        """(tensor, label) pairs from (path, label) samples, each image read with ``load_rgb``.

        Example:
            >>> ds = ImageDataset(split.train, build_transform(pre, train=True))
            >>> image, label = ds[0]
        """

        def __init__(self, samples: Iterable[tuple[str, int]], transform: Callable | None = None):
            self.samples = list(samples)
            self.transform = transform

        @property
        def targets(self) -> list[int]:
            return [label for _, label in self.samples]

        def __len__(self) -> int:
            return len(self.samples)

        def __getitem__(self, index: int) -> tuple[Any, int]:
            path, label = self.samples[index]
            try:
                image = load_rgb(path)
            except Exception as e:  # name the file: the traceback from a loader worker may not
                raise DataError(f"cannot read '{path}': {e}; remove or replace it") from e
            return (self.transform(image) if self.transform else image), label

    ImageDataset.__module__ = __name__
    ImageDataset.__qualname__ = "ImageDataset"
    return ImageDataset
