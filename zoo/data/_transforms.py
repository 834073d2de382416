"""Turning decoded images into tensors: the run's resize, crop and normalisation."""

from __future__ import annotations

import math
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

    Evaluation is ``EvalTransform``: the image as uint8 through ``zoo.data.preprocess_module``
    (resize to ``pre.resize_size``, centre crop to the input size, normalise); training with
    ``augment`` takes a random resized crop and a random horizontal flip instead; training
    without it is the evaluation transform. Without ``normalize`` it stops at the float32
    pixels 0..255, which ``normalize_batch`` then turns into exactly the same floats, a batch at
    a time. A training ``policy`` (trivial, rand, auto, augmix: torchvision's
    TrivialAugmentWide, RandAugment, AutoAugment, AugMix) follows the crop and flip.

    Example:
        >>> t = build_transform(Preprocessing(input_size=(3, 224, 224)), train=False)
        >>> t(load_rgb("cat.jpg")).shape
        torch.Size([3, 224, 224])
    """
    import torch
    from torchvision.transforms import v2

    if not (train and augment):
        return EvalTransform(pre, normalize=normalize)
    mode = _interpolation(pre.interpolation)
    height, width = pre.input_size[1], pre.input_size[2]
    geometry = [
        v2.RandomResizedCrop((height, width), interpolation=mode, antialias=True),
        v2.RandomHorizontalFlip(),
    ]
    if policy != "none":
        geometry.append(augment_policy(policy, mode))
    floats = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(pre.mean), list(pre.std))]
    return v2.Compose(
        geometry + [v2.ToImage()] + (floats if normalize else []) + [v2.ToPureTensor()]
    )


def decode_side(pre: Preprocessing, *, train: bool, augment: bool = True) -> int | None:
    """The smallest image side a random resized crop to ``pre``'s input size needs, so that
    decoding at a reduced size (``load_rgb(min_side=...)``) loses no pixel it would keep; None
    (decode every pixel) for evaluation and training without augmentation, whose resize must
    see the whole image as an exported model does, so the two agree.

    A random resized crop may keep as little as sqrt(0.08 * 3/4) of a side (torchvision's
    smallest scale and ratio) and stretch it to the input size, so it needs about 4.1 times
    that.

    >>> decode_side(Preprocessing(input_size=(3, 224, 224)), train=True)
    915
    """
    if not (train and augment):
        return None
    height, width = pre.input_size[1], pre.input_size[2]
    return math.ceil(max(height, width) / math.sqrt(0.08 * 3 / 4))


class EvalTransform:
    """A PIL image -> ``zoo.data.preprocess_module``'s output for it (its float32 pixels
    0..255 before normalising, when not ``normalize``): evaluation and export share one
    preprocessing."""

    def __init__(self, pre: Preprocessing, *, normalize: bool = True) -> None:
        self.pre, self.normalize = pre, normalize

    def __call__(self, image):
        import torch

        from zoo.data._module import shared_module, to_uint8

        module = shared_module(self.pre)
        with torch.no_grad():
            pixels = module.geometry(to_uint8(image)[None])
            out = module.normalize(pixels) if self.normalize else pixels
        return out[0]


def augment_policy(name: str, interpolation=None) -> Callable:
    """torchvision's automatic augmentation policy ``name``: trivial, rand, auto or augmix."""
    from torchvision.transforms import InterpolationMode, v2

    mode = interpolation or InterpolationMode.BILINEAR
    if name == "augmix":
        return v2.AugMix(interpolation=mode)
    kinds = {"trivial": v2.TrivialAugmentWide, "rand": v2.RandAugment, "auto": v2.AutoAugment}
    return kinds[name](interpolation=mode)


def normalize_batch(images, pre: Preprocessing):
    """Pixels (N, C, H, W) from ``build_transform(..., normalize=False)`` as the float32
    tensor ``build_transform`` gives: the same element-wise operations, so the same bits.

    Example:
        >>> normalize_batch(torch.stack([raw(load_rgb("cat.jpg"))]), pre).dtype
        torch.float32
    """
    from zoo.data._module import shared_module

    return shared_module(pre, str(images.device)).normalize(images)


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

        def __init__(
            self,
            samples: Iterable[tuple[str, int]],
            transform: Callable | None = None,
            min_side: int | None = None,  # decode JPEGs down to this (``decode_side``)
        ):
            self.samples = list(samples)
            self.transform = transform
            self.min_side = min_side

        @property
        def targets(self) -> list[int]:
            return [label for _, label in self.samples]

        def __len__(self) -> int:
            return len(self.samples)

        def __getitem__(self, index: int) -> tuple[Any, int]:
            path, label = self.samples[index]
            try:
                image = load_rgb(path, self.min_side)
            except Exception as e:  # name the file: the traceback from a loader worker may not
                raise DataError(f"cannot read '{path}': {e}; remove or replace it") from e
            if isinstance(label, tuple):  # multi-hot (multi-label): batches of float rows
                import torch

                label = torch.tensor(label)
            return (self.transform(image) if self.transform else image), label

    ImageDataset.__module__ = __name__
    ImageDataset.__qualname__ = "ImageDataset"
    return ImageDataset
