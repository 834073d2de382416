"""One epoch of training, one pass of evaluation: the inner loops, nothing else."""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from zoo.errors import NonFiniteLoss, StopRequested

if TYPE_CHECKING:
    import torch

    from zoo.compute._devices import Precision

# The auxiliary-loss weights torchvision's reference recipes use.
AUX_WEIGHTS = {1: 0.4, 2: 0.3}


@dataclass
class PhaseResult:
    """Sums over one pass; divide by ``count``."""

    loss_sum: float = 0.0
    correct: int = 0
    count: int = 0
    seconds: float = 0.0
    confusion: list[list[int]] | None = field(default=None, repr=False)

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.count, 1)

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.count, 1)


def autocast(device: torch.device, precision: Precision):
    import torch

    if precision.dtype is None:
        return nullcontext()
    return torch.autocast(device.type, dtype=precision.dtype)


def to_device(inputs, device, memory_format=None):
    """A batch of images, or a tuple of cached feature tensors, on ``device``."""
    if isinstance(inputs, (tuple, list)):
        return tuple(to_device(x, device, memory_format) for x in inputs)
    inputs = inputs.to(device, non_blocking=True)
    if memory_format is not None and inputs.dim() == 4:
        inputs = inputs.contiguous(memory_format=memory_format)
    return inputs


def forward(model, inputs):
    """``model(images)``, or ``suffix(*features)`` for a tuple of cached features."""
    return model(*inputs) if isinstance(inputs, tuple) else model(inputs)


def criterion(
    outputs, targets: torch.Tensor, loss_fn=None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss to train on, main head's loss, main logits): ``loss_fn`` (cross-entropy by
    default), plus the weighted auxiliary losses of inception/googlenet in train mode. The main
    head's loss is the one to report: it is what evaluation measures, so train and valid
    losses compare."""
    import torch.nn.functional as F

    loss_fn = loss_fn or F.cross_entropy
    if not isinstance(outputs, (tuple, list)):
        loss = loss_fn(outputs, targets)
        return loss, loss, outputs
    main, *aux = [o for o in outputs if o is not None]
    main_loss = loss_fn(main, targets)
    weight = AUX_WEIGHTS.get(len(aux), 0.3)
    loss = main_loss
    for logits in aux:
        loss = loss + weight * loss_fn(logits, targets)
    return loss, main_loss, main


def train_epoch(
    model,
    loader,
    optimizer,
    *,
    device,
    precision,
    scaler=None,
    epoch: int,
    memory_format=None,
    update=lambda images, loss: None,
    stop=lambda: False,
    loss_fn=None,
    after_step=None,
) -> PhaseResult:
    """Train ``model`` over ``loader``'s (inputs, targets) once; raises NonFiniteLoss, or
    StopRequested after the step in flight when ``stop()`` turns true. Inputs are images, or
    tuples of cached features for a suffix model (``zoo.training.cache``). The loss trained on
    includes auxiliary heads' losses; the one reported is the main head's, as in ``evaluate``.
    ``loss_fn(logits, targets)`` replaces cross-entropy (targets may be soft: (N, classes));
    ``after_step()`` runs after each optimizer step (warmup, weight averaging)."""
    import time

    model.train()
    result = PhaseResult()
    start = time.perf_counter()
    for step, (images, targets) in enumerate(loader, start=1):
        images = to_device(images, device, memory_format)
        targets = targets.to(device, non_blocking=True)
        with autocast(device, precision):
            loss, main_loss, logits = criterion(forward(model, images), targets, loss_fn)
        value = loss.item()
        if not math.isfinite(value):
            raise NonFiniteLoss(
                f"loss is {value} at epoch {epoch}, step {step}; stopped, "
                "keeping the files of the last good epoch; try a lower --lr "
                "or --precision fp32"
            )
        _optimizer_step(loss, optimizer, scaler, after_step)
        reported = main_loss.item() if main_loss is not loss else value
        _accumulate(result, reported, logits, targets)
        update(len(targets), reported * len(targets))
        if stop():
            raise StopRequested
    result.seconds = time.perf_counter() - start
    return result


def _optimizer_step(loss, optimizer, scaler, after_step) -> None:
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    if after_step is not None:
        after_step()


def evaluate(
    model,
    loader,
    *,
    device,
    precision,
    num_classes: int | None = None,
    update=lambda images, loss: None,
    memory_format=None,
) -> PhaseResult:
    """Loss, accuracy and (with ``num_classes``) the confusion matrix of ``model`` on
    ``loader``, in eval mode without autograd."""
    import time

    import torch
    import torch.nn.functional as F

    model.eval()
    result = PhaseResult()
    matrix = torch.zeros(num_classes or 1, num_classes or 1, dtype=torch.long)
    start = time.perf_counter()
    with torch.inference_mode():
        for images, targets in loader:
            images = to_device(images, device, memory_format)
            targets = targets.to(device, non_blocking=True)
            with autocast(device, precision):
                logits = forward(model, images)
            loss = F.cross_entropy(logits.float(), targets, reduction="sum").item()
            _accumulate(result, loss / len(targets), logits, targets)
            if num_classes:
                pairs = targets.cpu() * num_classes + logits.argmax(1).cpu()
                matrix += torch.bincount(pairs, minlength=num_classes**2).view_as(matrix)
            update(len(targets), loss)
    result.seconds = time.perf_counter() - start
    if num_classes:
        result.confusion = matrix.tolist()
    return result


def _accumulate(result: PhaseResult, mean_loss: float, logits, targets) -> None:
    n = len(targets)
    if targets.dim() > 1:  # soft targets (mixup, cutmix): the class with the most weight
        targets = targets.argmax(1)
    result.loss_sum += mean_loss * n
    result.correct += int((logits.argmax(1) == targets).sum())
    result.count += n
