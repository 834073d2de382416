"""Fine-tuning: the options, setting up or resuming a run, the trainer, optimizers, torchrun,
seeding and progress reporting."""

from __future__ import annotations

from zoo.training._config import TrainConfig
from zoo.training._finetune import FinetuneResult, finetune
from zoo.training._optim import build_optimizer, build_scheduler
from zoo.training._progress import Reporter, reporter_for
from zoo.training._seeding import seed_everything

__all__ = [
    "FinetuneResult",
    "Reporter",
    "TrainConfig",
    "build_optimizer",
    "build_scheduler",
    "finetune",
    "reporter_for",
    "seed_everything",
]
