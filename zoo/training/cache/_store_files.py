"""The files of a disk feature store: float16 memory maps, one per boundary tensor, a meta.json,
and the partial folders that runs killed while writing leave behind."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import FeatureStoreError
from zoo.files import process_alive

if TYPE_CHECKING:
    from torch import Tensor

META = "meta.json"
FP16_MAX = 65504.0  # float16's largest finite value


def to_fp16(tensor: Tensor) -> Tensor:
    """``tensor`` as float16, refusing values float16 would turn into infinities."""
    import torch

    if ((tensor.abs() > FP16_MAX) & torch.isfinite(tensor)).any():
        raise FeatureStoreError(
            "features exceed float16's range (65504), so a disk store would lose them; "
            "raise the cache cap to keep them in RAM, or train without the feature cache"
        )
    return tensor.to(torch.float16)


def map_existing(path: Path, count: int, shape):
    """A complete array file, mapped read-only; ValueError when its size is wrong."""
    import numpy as np

    expected = count * math.prod(shape) * 2
    if path.stat().st_size != expected:
        raise ValueError(f"{path} holds {path.stat().st_size} bytes, not {expected}")
    return np.memmap(path, dtype=np.float16, mode="r", shape=(count, *shape))


def array_name(index: int) -> str:
    return f"boundary-{index}.f16"


def sweep(folder: Path) -> None:
    """Remove the partial stores of ``folder`` left by runs that were killed."""
    for partial in folder.parent.glob(f".{folder.name}.partial-*"):
        pid = partial.name.rsplit(".partial-", 1)[1].split("-")[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(partial, ignore_errors=True)
