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
# Steps between reads of the device's losses while training: how late a nan loss may be seen.
CHECK_EVERY = 32


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
    check_every: int = CHECK_EVERY,
    loss_fn=None,
    after_step=None,
) -> PhaseResult:
    """Train ``model`` over ``loader``'s (inputs, targets) once; raises NonFiniteLoss, or
    StopRequested after the step in flight when ``stop()`` turns true. Inputs are images, or
    tuples of cached features for a suffix model (``zoo.training.cache``). The loss trained on
    includes auxiliary heads' losses; the one reported is the main head's, as in ``evaluate``.
    No step waits for the device (``Tally``); ``update(images, loss_sum)`` gets the loss as a
    device tensor, and reading it is the caller's choice. ``loss_fn(logits, targets)``
    replaces cross-entropy (targets may be soft: (N, classes)); ``after_step()`` runs after
    each optimizer step (warmup, weight averaging)."""
    import time

    model.train()
    tally = Tally(epoch)
    start = time.perf_counter()
    for step, (images, targets) in enumerate(loader, start=1):
        images = to_device(images, device, memory_format)
        targets = targets.to(device, non_blocking=True)
        with autocast(device, precision):
            loss, main_loss, logits = criterion(forward(model, images), targets, loss_fn)
        _optimizer_step(loss, optimizer, scaler, after_step)
        tally.add(loss, main_loss, logits, targets)
        update(len(targets), main_loss.detach() * len(targets))
        if step % check_every == 0:
            tally.check()
        if stop():
            tally.check()
            raise StopRequested
    result = tally.result()  # waits for the device: the time below covers its work
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
    ``loader``, in eval mode without autograd; sums stay on the device until the end."""
    import time

    import torch
    import torch.nn.functional as F

    model.eval()
    tally = Tally(None)
    matrix = torch.zeros(num_classes or 1, num_classes or 1, dtype=torch.long, device=device)
    start = time.perf_counter()
    with torch.inference_mode():
        for images, targets in loader:
            images = to_device(images, device, memory_format)
            targets = targets.to(device, non_blocking=True)
            with autocast(device, precision):
                logits = forward(model, images)
            loss = F.cross_entropy(logits.float(), targets, reduction="sum")
            tally.add(None, loss / len(targets), logits, targets)
            if num_classes:
                pairs = targets * num_classes + logits.argmax(1)
                matrix += torch.bincount(pairs, minlength=num_classes**2).view_as(matrix)
            update(len(targets), loss)
    result = tally.result()
    if num_classes:
        result.confusion = matrix.cpu().tolist()
    result.seconds = time.perf_counter() - start
    return result


class Tally:
    """One pass's losses and correct counts, kept on the device as 0-d tensors, one per step:
    reading them makes the host wait for the device, so that happens every ``check_every``
    steps at most (``check``: a nan or inf loss stops the run there, naming the step where it
    first appeared) and once at the end (``result``), never per step."""

    def __init__(self, epoch: int | None) -> None:
        self.epoch = epoch  # None: evaluation, which does not stop on a non-finite loss
        self.trained: list = []  # the loss each step trained on (with auxiliary losses)
        self.reported: list = []  # the main head's mean loss
        self.correct: list = []
        self.sizes: list[int] = []
        self.checked = 0  # steps already found finite

    def add(self, loss, main_loss, logits, targets, correct=None) -> None:
        """One step: ``correct``, a 0-d device tensor, counts the step's right images where
        the top class is not the rule (multi-label's exact matches); by default, top class
        against target."""
        self.trained.append((main_loss if loss is None else loss).detach().float())
        self.reported.append(main_loss.detach().float())
        if correct is None:
            if targets.dim() > 1:  # soft targets (mixup, cutmix): the class with the most weight
                targets = targets.argmax(1)
            correct = (logits.argmax(1) == targets).sum()
        self.correct.append(correct)
        self.sizes.append(len(targets))

    def check(self) -> None:
        """Raise NonFiniteLoss naming the first step whose loss was nan or inf."""
        import torch

        if self.epoch is None or self.checked == len(self.trained):
            return
        losses = torch.stack(self.trained[self.checked :]).cpu().tolist()
        for offset, value in enumerate(losses):
            if not math.isfinite(value):
                raise NonFiniteLoss(
                    f"loss is {value} at epoch {self.epoch}, step {self.checked + offset + 1}; "
                    "stopped, keeping the files of the last good epoch; try a lower --lr "
                    "or --precision fp32"
                )
        self.checked = len(self.trained)

    def result(self) -> PhaseResult:
        """The pass's sums, read from the device in one go."""
        import torch

        self.check()
        result = PhaseResult()
        if not self.sizes:
            return result
        sums = torch.stack([torch.stack(self.reported), torch.stack(self.correct).float()])
        losses, correct = sums.cpu().tolist()
        for mean_loss, right, n in zip(losses, correct, self.sizes, strict=True):
            result.loss_sum += mean_loss * n
            result.correct += int(right)
            result.count += n
        return result
