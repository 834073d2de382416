"""Optimizers and learning-rate schedulers for a fine-tuning run."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from zoo.training._config import TrainConfig


def build_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer the options name, over the trainable ``params`` only.

    >>> build_optimizer(model.parameters(), TrainConfig())   # SGD(lr=0.001, momentum=0.9)
    """
    import torch

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


def step_scheduler(scheduler, val_loss: float) -> None:
    """Advance ``scheduler`` one epoch."""
    import torch.optim.lr_scheduler as s

    if scheduler is None:
        return
    if isinstance(scheduler, s.ReduceLROnPlateau):
        scheduler.step(val_loss)
    else:
        scheduler.step()
