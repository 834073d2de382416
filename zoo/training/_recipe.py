"""The parts of a recipe beyond the seeds': the loss (label smoothing, class weights), mixup
and cutmix on each training batch, the learning-rate warmup and the weights' moving average.

Each is built once at set-up from ``TrainConfig``; those that change as the run trains
(``WeightAverage``, the warmup scheduler) have ``state_dict()``/``load_state_dict()`` and live
in ``TrainingState``, so they resume exactly.

    >>> loss_fn = build_loss(config, labels, num_classes, device)
    >>> batches = mix_batches(loader, build_mixer(config, num_classes), config.seed, epoch)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from zoo.data import epoch_seed

if TYPE_CHECKING:
    import torch

    from zoo.compute import Precision
    from zoo.training._config import TrainConfig
    from zoo.training._session import RunData


# --recipe modern's batch size for a small training set: an epoch of at least this many
# optimizer steps, in batches of at least SMALLEST_BATCH images (64 from 512 images on).
FEW_SHOT_STEPS = 8
SMALLEST_BATCH = 16


def resolve_batch_size(config: TrainConfig, n_train: int, world: int, reporter) -> None:
    """Set ``config.batch_size`` when it is None (``--recipe modern`` without --batch-size):
    64 per process, or less on a small training set, so an epoch makes FEW_SHOT_STEPS steps
    (100 images in batches of 64 are two steps an epoch, too few to train on)."""
    if config.batch_size is not None:
        return
    per_process = -(-n_train // world)  # each process's share, rounded up
    config.batch_size = min(64, max(SMALLEST_BATCH, -(-per_process // FEW_SHOT_STEPS)))
    if config.batch_size < 64:
        reporter.note(
            f"batch size {config.batch_size}: --recipe modern keeps {FEW_SHOT_STEPS} optimizer "
            f"steps an epoch on {n_train} training images (--batch-size to choose)"
        )


def build_loss(config: TrainConfig, labels: list[int], num_classes: int, device=None):
    """The training loss: cross-entropy with --label-smoothing and, with --class-weights auto,
    each class weighted by its inverse frequency in ``labels`` (the train labels)."""
    import torch

    weight = class_weights(labels, num_classes) if config.class_weights == "auto" else None
    if weight is not None and device is not None:
        weight = weight.to(device)
    return torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=config.label_smoothing)


def class_weights(labels: list[int], num_classes: int) -> torch.Tensor:
    """n / (k * n_c) for each of the k classes present (1 on average); 0 for an absent class."""
    import torch

    counts = torch.bincount(torch.tensor(labels), minlength=num_classes).double()
    present = counts > 0
    weight = torch.zeros(num_classes, dtype=torch.double)
    weight[present] = counts.sum() / (present.sum() * counts[present])
    return weight.float()


def build_mixer(config: TrainConfig, num_classes: int):
    """torchvision's MixUp, CutMix, or one of them at random per batch; None when both are 0."""
    from torchvision.transforms import v2

    kinds = []
    if config.mixup > 0:
        kinds.append(v2.MixUp(alpha=config.mixup, num_classes=num_classes))
    if config.cutmix > 0:
        kinds.append(v2.CutMix(alpha=config.cutmix, num_classes=num_classes))
    if not kinds:
        return None
    return kinds[0] if len(kinds) == 1 else v2.RandomChoice(kinds)


def mix_batches(batches: Iterable, mixer, seed: int, epoch: int, rank: int = 0) -> Iterator:
    """``batches`` with ``mixer`` applied, each batch drawn from its own (seed, epoch, rank,
    step) so that a resumed run mixes as an unbroken one; the targets become soft."""
    import torch

    base = epoch_seed(seed, epoch) * 7 + rank
    for step, (images, targets) in enumerate(batches):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((base * 1_000_003 + step) % 2**62)
            images, targets = mixer(images, targets)
        yield images, targets


def build_warmup(optimizer, config: TrainConfig, steps_per_epoch: int):
    """A LinearLR over the first --warmup-epochs worth of optimizer steps (at least one), to
    step after each optimizer step; it scales whatever the epoch scheduler sets. None when off."""
    if config.warmup_epochs <= 0:
        return None
    from torch.optim.lr_scheduler import LinearLR

    steps = max(1, round(config.warmup_epochs * steps_per_epoch))
    return LinearLR(optimizer, start_factor=1 / (steps + 1), end_factor=1.0, total_iters=steps)


def warmup_decay(decay: float):
    """EMA with its decay warmed up by the step count, as timm's ModelEmaV3 does: an average
    over few steps (few-shot data) is not stuck near its starting weights."""

    def average(averaged, current, steps):
        rate = min(decay, (1 + float(steps)) / (10 + float(steps)))
        return averaged + (current - averaged) * (1 - rate)

    return average


def build_average(model, config: TrainConfig):
    """torch.optim.swa_utils.AveragedModel of ``model``'s parameters and buffers with --ema's
    decay (warmed up), or None when --ema is off."""
    if config.ema is None:
        return None
    from torch.optim.swa_utils import AveragedModel

    return AveragedModel(model, avg_fn=warmup_decay(config.ema), use_buffers=True)


@contextmanager
def averaged_weights(model, average):
    """``model`` holds the averaged weights inside the block (validation), its own after."""
    if average is None:
        yield
        return
    own = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(average.module.state_dict())
    try:
        yield
    finally:
        model.load_state_dict(own)


def imbalanced(labels: list[int], ratio: float = 2.0) -> bool:
    """Whether the most frequent class in ``labels`` has ``ratio`` times the rarest's count:
    then the epoch line shows the classes with the lowest valid accuracy."""
    from collections import Counter

    counts = Counter(labels).values()
    return len(counts) > 1 and max(counts) >= ratio * min(counts)


def class_accuracy(confusion: list[list[int]], classes: list[str]) -> dict[str, float]:
    """Each class's valid accuracy (its recall) from the confusion matrix, by class name."""
    return {
        name: row[i] / sum(row)
        for i, (name, row) in enumerate(zip(classes, confusion, strict=False))
        if sum(row)
    }


def training_state(
    model, config: TrainConfig, device: torch.device, precision: Precision, steps: int
):
    """The optimizer (a group per stage for --layer-decay), schedulers (epoch and warmup),
    scaler and weight average of a new run."""
    import torch

    from zoo.training._optim import build_optimizer, build_scheduler
    from zoo.training._stages import parameter_groups
    from zoo.training._state import TrainingState

    optimizer = build_optimizer(parameter_groups(model, config), config)
    scheduler = build_scheduler(optimizer, config)
    scaler = torch.amp.GradScaler(device.type) if precision.scaler else None
    state = TrainingState(model, optimizer, scheduler, scaler)
    state.warmup = build_warmup(optimizer, config, steps)  # after the epoch scheduler
    state.average = build_average(model, config)
    state.progress.schedule_epochs = config.epochs
    return state


def recipe_parts(config: TrainConfig, data: RunData, task, device: torch.device) -> dict:
    """The single-label recipe's parts of a Session: the loss (--label-smoothing,
    --class-weights), mixup/cutmix, and whether classes are imbalanced (each one's valid
    accuracy in the epoch row); a multi-label task has its own loss and none of the others."""
    if task.multi_label:
        return {}
    labels = [label for _, label in data.split.train]
    return {
        "loss_fn": build_loss(config, labels, data.num_classes, device),
        "mixer": build_mixer(config, data.num_classes),
        "per_class": imbalanced(labels),
    }
