"""Fine-tuning: the options, setting up or resuming a run, the trainer, optimizers, torchrun,
seeding and progress reporting.

``finetune`` and ``FinetuneResult`` are imported on first use: the CLI imports this package
for ``TrainConfig``'s options, and ``zoo --help`` should not pay for setting up a run.
"""

from __future__ import annotations

from importlib import import_module

from zoo.training._config import TrainConfig
from zoo.training._optim import build_optimizer, build_scheduler
from zoo.training._progress import Reporter, reporter_for
from zoo.training._seeding import seed_everything

_LAZY = {
    "finetune": "zoo.training._finetune",
    "FinetuneResult": "zoo.training._trainer",
    "lr_find": "zoo.training._lr_find",
}

__all__ = [
    "FinetuneResult",
    "Reporter",
    "TrainConfig",
    "build_optimizer",
    "build_scheduler",
    "finetune",
    "lr_find",
    "reporter_for",
    "seed_everything",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo.training' has no attribute {name!r}")
