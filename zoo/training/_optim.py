"""Optimizers and learning-rate schedulers for a fine-tuning run."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from zoo.training._config import TrainConfig


def build_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer the options name, over the trainable ``params`` only; or over parameter
    groups (dicts, ``zoo.training._stages.parameter_groups``) as they are.

    >>> build_optimizer(model.parameters(), TrainConfig())   # SGD(lr=0.001, momentum=0.9)
    """
    import torch

    params = list(params)
    if params and isinstance(params[0], dict):
        params = [g for g in params if g["params"]]
    else:
        params = [p for p in params if p.requires_grad]
    lr, wd = config.lr, config.weight_decay
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=wd)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    return torch.optim.RMSprop(params, lr=lr, momentum=config.momentum, weight_decay=wd)


def build_scheduler(optimizer, config: TrainConfig):
    """The epoch-wise scheduler the options name, or None; step it after the epoch's
    optimizer steps (``ReduceLROnPlateau`` with the validation loss)."""
    import torch.optim.lr_scheduler as s

    gamma = config.gamma
    if config.scheduler == "step":
        return s.StepLR(optimizer, step_size=config.step_size, gamma=gamma or 0.1)
    if config.scheduler == "multistep":
        milestones = config.milestones or [config.epochs // 2, config.epochs * 3 // 4]
        return s.MultiStepLR(optimizer, milestones=milestones, gamma=gamma or 0.1)
    if config.scheduler == "exponential":
        return s.ExponentialLR(optimizer, gamma=gamma or 0.9)
    if config.scheduler == "plateau":
        return s.ReduceLROnPlateau(optimizer, factor=gamma or 0.1, patience=2)
    if config.scheduler == "cosine":
        return s.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return None


def resize_schedule(scheduler, optimizer, config: TrainConfig, done: int):
    """The scheduler of a run resumed after ``done`` epochs with another --epochs than its
    schedule was made for: the schedule for the new length, continuing from where it is.

    Only cosine and the default multistep milestones depend on the length. Before any epoch
    ran, the schedule is built anew for it. After that, a cosine schedule anneals from the
    learning rate of the last epoch run to its minimum at the new end, so the learning rate
    keeps decreasing; step, multistep, exponential and plateau go on as they were (the
    decays already made stay made).
    """
    import torch.optim.lr_scheduler as s

    if done == 0:
        return build_scheduler(optimizer, config)
    if not isinstance(scheduler, s.CosineAnnealingLR):
        return scheduler
    old, eta = scheduler, scheduler.eta_min
    length = config.epochs + 1 - done  # from epoch ``done`` (position 0) to the new end
    for group, base in zip(optimizer.param_groups, old.base_lrs, strict=True):
        last = eta + (base - eta) * _half_cosine(old.last_epoch - 1, old.T_max)  # epoch done
        group["initial_lr"] = last
        group["lr"] = eta + (last - eta) * _half_cosine(1, length)  # the next epoch's
    return s.CosineAnnealingLR(optimizer, T_max=length, eta_min=eta, last_epoch=0)


def _half_cosine(position: int, length: int) -> float:
    """Cosine annealing's factor at ``position`` of ``length``: from 1 at 0 to 0 at the end."""
    import math

    return (1 + math.cos(math.pi * position / length)) / 2


def step_scheduler(scheduler, val_loss: float) -> None:
    """Advance ``scheduler`` one epoch."""
    import torch.optim.lr_scheduler as s

    if scheduler is None:
        return
    if isinstance(scheduler, s.ReduceLROnPlateau):
        scheduler.step(val_loss)
    else:
        scheduler.step()
