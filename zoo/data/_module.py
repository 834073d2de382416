"""The evaluation preprocessing as one ``nn.Module``: uint8 RGB images ``(N, 3, H, W)`` of any
size in, the normalised tensor a backbone expects out.

The same module runs after decoding in a run's validation, in ``zoo evaluate`` and ``zoo
predict``, and inside every exported model (``zoo export``), so zoo and an exported model agree
by construction. It resizes the shorter side to ``Preprocessing.resize_size`` (both sides for a
non-square input size, as timm does) with antialiasing and the run's interpolation, centre-crops
to the input size and normalises. It does not round to whole pixel values: rounding would
turn the last-bit differences between two runtimes' resize into whole-level differences.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor, nn

    from zoo.data._preprocessing import Preprocessing

# PIL's names for the resize filter -> F.interpolate's modes.
_MODES = {"nearest": "nearest", "bilinear": "bilinear", "bicubic": "bicubic"}


def preprocess_module(pre: Preprocessing) -> nn.Module:
    """A fresh ``ImagePreprocess`` for ``pre`` (a module: move it, wrap it, export it).

    Example:
        >>> module = preprocess_module(Preprocessing(input_size=(3, 224, 224)))
        >>> module(torch.zeros(2, 3, 480, 640, dtype=torch.uint8)).shape
        torch.Size([2, 3, 224, 224])
    """
    return _module_class()(pre)


@lru_cache(maxsize=64)
def shared_module(pre: Preprocessing, device: str = "cpu") -> nn.Module:
    """One ``preprocess_module`` per config and device, for the loaders and caches."""
    return preprocess_module(pre).to(device)


def to_uint8(image) -> Tensor:
    """A decoded RGB PIL image as a uint8 tensor ``(3, H, W)``."""
    import numpy as np
    import torch

    return torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1)


def _half(d):
    """``round(d / 2)`` as torchvision's centre crop rounds it (half to even), in integer
    arithmetic that stays symbolic under torch.export."""
    return d // 2 + (d % 2) * ((d // 2) % 2)


@lru_cache(maxsize=1)
def _module_class() -> type:
    import torch
    import torch.nn.functional as F
    from torch import nn

    class ImagePreprocess(nn.Module):
        """Resize (antialiased), centre crop, round, normalise: uint8 ``(N, 3, H, W)`` in."""

        def __init__(self, pre: Preprocessing) -> None:
            super().__init__()
            self.height, self.width = int(pre.input_size[1]), int(pre.input_size[2])
            self.resize, self.crop_pct = pre.resize_size, pre.crop_pct
            self.mode = _MODES.get(pre.interpolation.lower(), "bilinear")
            self.register_buffer("mean", torch.tensor(pre.mean).view(1, -1, 1, 1))
            self.register_buffer("std", torch.tensor(pre.std).view(1, -1, 1, 1))

        def resized_size(self, h, w):
            if self.height != self.width:
                return int(self.height / self.crop_pct), int(self.width / self.crop_pct)
            short = torch.sym_min(h, w)  # no branch: torch.export keeps H and W symbolic
            return self.resize * h // short, self.resize * w // short

        def geometry(self, images: Tensor) -> Tensor:
            """uint8 images -> float32 pixel values 0..255 at the input size."""
            h, w = self.resized_size(images.shape[-2], images.shape[-1])
            kwargs = {"antialias": True, "align_corners": False} if self.mode != "nearest" else {}
            x = F.interpolate(images.float(), size=(h, w), mode=self.mode, **kwargs)
            top, left = _half(h - self.height), _half(w - self.width)
            # indices of a fixed length, not a slice: the crop's shape stays static under
            # torch.export (a slice with symbolic bounds gets a data-dependent size)
            rows = torch.arange(self.height, device=x.device) + top
            cols = torch.arange(self.width, device=x.device) + left
            x = x.index_select(2, rows).index_select(3, cols)
            return x.clamp(0, 255)

        def normalize(self, pixels: Tensor) -> Tensor:
            """Pixel values 0..255 (uint8 or float) -> the normalised float32 model input."""
            return (pixels.float() * (1 / 255) - self.mean) / self.std

        def forward(self, images: Tensor) -> Tensor:
            return self.normalize(self.geometry(images))

    ImagePreprocess.__module__ = __name__
    ImagePreprocess.__qualname__ = "ImagePreprocess"
    globals()["ImagePreprocess"] = ImagePreprocess  # picklable by name (loader workers)
    return ImagePreprocess


def __getattr__(name: str) -> Any:
    if name == "ImagePreprocess":
        return _module_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
