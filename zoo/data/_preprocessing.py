"""How images are prepared for a backbone: input size, resize, crop, mean and std."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """The image config a backbone was trained with (timm's pretrained_cfg, torchvision's
    weight transforms)."""

    input_size: tuple[int, int, int] = (3, 224, 224)  # channels, height, width after cropping
    mean: tuple[float, ...] = IMAGENET_MEAN  # per-channel mean, on a 0..1 scale
    std: tuple[float, ...] = IMAGENET_STD  # per-channel std, on a 0..1 scale
    interpolation: str = "bilinear"  # resize filter: nearest, bilinear or bicubic
    crop_pct: float = 0.875  # crop size / resize size (224 / 256)

    @property
    def crop_size(self) -> int:
        return self.input_size[-1]

    @property
    def resize_size(self) -> int:
        """The shorter side before the center crop."""
        return int(math.floor(self.crop_size / self.crop_pct))

    def with_image_size(self, size: int) -> Preprocessing:
        """The same config at another crop size, keeping the crop ratio."""
        return Preprocessing(
            (self.input_size[0], size, size), self.mean, self.std, self.interpolation, self.crop_pct
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessing:
        """A config from ``d``; a key it lacks keeps the default above (said only there)."""
        default = cls()
        return cls(
            input_size=tuple(d.get("input_size", default.input_size)),
            mean=tuple(d.get("mean", default.mean)),
            std=tuple(d.get("std", default.std)),
            interpolation=d.get("interpolation", default.interpolation),
            crop_pct=float(d.get("crop_pct", default.crop_pct)),
        )
