"""Multi-label classification: per-label binary cross-entropy, its training and evaluation
loops, and its metrics (average precision per label and its mean, precision, recall and F1 at a
threshold, micro and macro F1).

A target is a multi-hot float row, one column per label; a head larger than the labels
(``--num-classes``) has its extra columns taken as never present. The loops mirror
``zoo.compute._loop``'s, with this loss and the same ``Tally`` (no step waits for the
device), and evaluation keeps every image's scores, since average precision ranks the whole
set.

    >>> loss, main_loss, logits = multilabel_criterion(model(images), targets)
    >>> result = evaluate_multilabel(model, loader, device=device, precision=precision)
    >>> multilabel_metrics(result.scores, result.targets, threshold=0.5)["map"]
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from zoo.compute._loop import (
    CHECK_EVERY,
    PhaseResult,
    Tally,
    _optimizer_step,
    autocast,
    criterion,
    forward,
    to_device,
)
from zoo.errors import StopRequested

if TYPE_CHECKING:
    import torch


@dataclass
class MultiLabelResult(PhaseResult):
    """Sums over one pass, and (evaluation) every image's probabilities and targets."""

    # (images, labels) tensors, joined along images: one per pass, one per rank after a
    # torchrun gather; probabilities and 0/1 targets.
    scores: list = field(default_factory=list, repr=False)
    targets: list = field(default_factory=list, repr=False)


def multilabel_criterion(outputs, targets, pos_weight=None, label_smoothing: float = 0.0):
    """(loss to train on, main head's loss, main logits): binary cross-entropy with logits,
    averaged over images and labels, plus inception/googlenet's weighted auxiliary losses.
    ``pos_weight`` (one per label, see ``positive_weights``) weighs each label's positives;
    ``label_smoothing`` e pulls each 0/1 target towards 1/2 (1 - e/2 and e/2)."""
    if label_smoothing:
        targets = targets.float() * (1 - label_smoothing) + label_smoothing / 2
    return criterion(outputs, targets, lambda logits, t: _bce(logits, t, pos_weight))


def _bce(logits, targets, pos_weight=None, reduction: str = "mean"):
    import torch.nn.functional as F

    targets = fit_targets(targets, logits)
    weight = None if pos_weight is None else fit_targets(pos_weight, logits, fill=1.0)
    return F.binary_cross_entropy_with_logits(
        logits.float(), targets, pos_weight=weight, reduction=reduction
    )


def fit_targets(targets, logits, fill: float = 0.0):
    """``targets`` as floats on ``logits``' device, padded with ``fill`` to its width."""
    import torch
    import torch.nn.functional as F

    targets = targets.to(device=logits.device, dtype=torch.float32)
    extra = logits.shape[-1] - targets.shape[-1]
    return F.pad(targets, (0, extra), value=fill) if extra > 0 else targets


def positive_weights(labels) -> torch.Tensor:
    """``pos_weight`` for ``--class-weights auto`` in multi-label mode: for each label, its
    negatives over its positives among ``labels`` (multi-hot rows), 1 for a label never
    present, as ``torch.nn.BCEWithLogitsLoss`` documents.

    >>> positive_weights([(1.0, 0.0), (1.0, 1.0), (0.0, 0.0), (0.0, 0.0)])
    tensor([1., 3.])
    """
    import torch

    rows = torch.as_tensor(labels, dtype=torch.float32)
    positives = rows.sum(0)
    negatives = len(rows) - positives
    ratio = negatives / positives.clamp(min=1)
    return torch.where(positives > 0, ratio, torch.ones_like(positives))


def train_epoch_multilabel(
    model,
    loader,
    optimizer,
    *,
    device,
    precision,
    scaler=None,
    epoch: int,
    memory_format=None,
    pos_weight=None,
    threshold: float = 0.5,
    update=lambda images, loss: None,
    stop=lambda: False,
    check_every: int = CHECK_EVERY,
    label_smoothing: float = 0.0,
    after_step=None,
) -> MultiLabelResult:
    """``zoo.compute.train_epoch`` with the multi-label loss; ``correct`` counts images whose
    every label is right at ``threshold``. As there, no step waits for the device (``Tally``:
    a nan or inf loss is seen every ``check_every`` steps, naming its step) and
    ``update(images, loss_sum)`` gets the loss as a device tensor. ``after_step()`` runs after
    each optimizer step."""
    model.train()
    tally = Tally(epoch)
    start = time.perf_counter()
    for step, (images, targets) in enumerate(loader, start=1):
        images = to_device(images, device, memory_format)
        with autocast(device, precision):
            loss, main_loss, logits = multilabel_criterion(
                forward(model, images), targets, pos_weight, label_smoothing
            )
        _optimizer_step(loss, optimizer, scaler, after_step)
        tally.add(loss, main_loss, logits, targets, exact_matches(logits, targets, threshold))
        update(len(targets), main_loss.detach() * len(targets))
        if step % check_every == 0:
            tally.check()
        if stop():
            tally.check()
            raise StopRequested
    return _finish(tally, start)


def evaluate_multilabel(
    model,
    loader,
    *,
    device,
    precision,
    threshold: float = 0.5,
    update=lambda images, loss: None,
    memory_format=None,
) -> MultiLabelResult:
    """Loss, exact-match accuracy and every image's probabilities and targets (on the CPU,
    one tensor each for the pass), in eval mode without autograd; all stay on the device
    until the end."""
    import torch

    model.eval()
    tally = Tally(None)
    scores, targets_seen = [], []
    start = time.perf_counter()
    with torch.inference_mode():
        for images, targets in loader:
            images = to_device(images, device, memory_format)
            with autocast(device, precision):
                logits = forward(model, images)
            loss = _bce(logits, targets, reduction="none").mean(1).sum()
            matches = exact_matches(logits, targets, threshold)
            tally.add(None, loss / len(targets), logits, targets, matches)
            scores.append(logits.float().sigmoid())
            targets_seen.append(fit_targets(targets, logits))
            update(len(targets), loss)
    return _finish(tally, start, scores, targets_seen)


def exact_matches(logits, targets, threshold: float):
    """How many images have every label right at ``threshold``: a 0-d tensor on the device."""
    logits = logits.detach().float()
    predicted = logits.sigmoid() >= threshold
    truth = fit_targets(targets, logits) > 0.5
    return (predicted == truth).all(1).sum()


def _finish(tally: Tally, start: float, scores=(), targets=()) -> MultiLabelResult:
    """The pass's result, read from the device in one go: sums, and the batches' scores and
    targets joined into one CPU tensor each (none for an empty pass)."""
    import torch

    sums = tally.result()  # waits for the device: the time below covers its work
    result = MultiLabelResult(sums.loss_sum, sums.correct, sums.count)
    if scores:
        result.scores = [torch.cat(scores).cpu()]
        result.targets = [torch.cat(targets).cpu()]
    result.seconds = time.perf_counter() - start
    return result
