"""Inference speed, measured the same way for every backbone of a bake-off: the trained
model, on the run's device, precision and memory format, at the run's batch size and image
size, apart from the caching pass (which also decodes images)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

    from zoo.compute import Precision

MIN_SECONDS = 0.3  # time at least this long, and at least MIN_BATCHES batches
MIN_BATCHES = 1
MAX_BATCHES = 20
WARM_UP_IMAGES = 2  # the warm-up of a model that just ran batches of this size


def measure(
    model: nn.Module,
    image_size: tuple[int, int],
    batch_size: int,
    device: torch.device,
    precision: Precision,
    *,
    warm: bool = False,
) -> tuple[float, float]:
    """Images per second of ``model``'s forward pass, timed after a warm-up, and its GFLOPs
    per image (a multiply-add counted once), counted on one image apart (counting slows a
    pass down, and costs no more on one image than on a batch).

    The warm-up is one whole batch (lazy initialisation, the allocator, cuDNN's or oneDNN's
    kernels for the batch's shapes), or two images for a ``warm`` model, which has just run
    batches of this size in this process: a bake-off's caching pass. Its first whole batch then
    runs as fast as the next ones (resnet18 on a 2-core CPU: 0.405 s against 0.404 s); the
    first of a cold model takes about 10% longer.

    >>> cpu = torch.device("cpu")
    >>> measure(model, (224, 224), 64, cpu, resolve_precision("fp32", cpu))
    (812.5, 0.3)
    """
    import torch

    from zoo.compute import autocast, memory_format
    from zoo.models import count_gflops

    fmt = memory_format(model, device)
    model.to(device, memory_format=fmt or torch.preserve_format).eval()
    batch = torch.randn(batch_size, 3, *image_size, device=device)
    batch = batch.contiguous(memory_format=fmt) if fmt else batch
    gflops = count_gflops(model, (3, *image_size))
    with torch.inference_mode(), autocast(device, precision):
        model(batch[:WARM_UP_IMAGES] if warm else batch)
        _sync(device)
        start, batches = time.perf_counter(), 0
        while batches < MIN_BATCHES or (
            time.perf_counter() - start < MIN_SECONDS and batches < MAX_BATCHES
        ):
            model(batch)
            batches += 1
        _sync(device)
    speed = batches * batch_size / (time.perf_counter() - start)
    return speed, gflops


def _sync(device: torch.device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
