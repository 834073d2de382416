"""A fine-tuning session: the parts of one run, made by ``start_run`` or ``resume_run``
(``zoo.training._setup``) and trained by ``fit`` (``zoo.training._trainer``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from zoo.training._task import SingleLabel

if TYPE_CHECKING:
    from pathlib import Path

    import torch
    from torch import nn

    from zoo.compute import Precision
    from zoo.data import DataSplit, Loaders
    from zoo.runs import RunDir
    from zoo.training._config import TrainConfig
    from zoo.training._distributed import Dist
    from zoo.training._progress import Reporter
    from zoo.training._state import TrainingState
    from zoo.training._writer import Writer
    from zoo.training.cache._source import BatchSource


@dataclass
class RunData:
    """The images a run trains and validates on."""

    folder: Path  # the image folder
    split: DataSplit  # its train and valid (path, label) pairs, unreadable files left out
    skipped: list[tuple[str, str]]  # the unreadable files, with why
    num_classes: int  # the head's size: --num-classes, else the number of classes found

    @property
    def classes(self) -> list[str]:
        return self.split.classes


@dataclass
class Session:
    """One run's parts; nothing here changes after set-up but ``state``, and ``source`` at
    the --unfreeze-after boundary (``zoo.training._stages.unfreeze_session``)."""

    config: TrainConfig
    dist: Dist  # this process's place under torchrun
    reporter: Reporter  # silent off rank 0
    run: RunDir
    writer: Writer  # silent off rank 0
    data: RunData
    meta: dict  # what best.pt and last.pt say the model is (id, classes, preprocessing...)
    device: torch.device
    precision: Precision
    memory_format: torch.memory_format | None  # channels_last where it is faster
    loaders: Loaders
    source: BatchSource  # where each phase's batches come from, and the module they go to
    state: TrainingState  # the model, optimizer, scheduler, scaler and progress: last.pt
    counts: tuple[int, int]  # frozen and trainable parameters
    task: SingleLabel = field(default_factory=SingleLabel)  # one label per image, or several
    loss_fn: object = None  # the training loss (zoo.training._recipe.build_loss)
    mixer: object = None  # mixup/cutmix on each training batch, or None
    per_class: bool = False  # imbalanced classes: the epoch row has each one's valid accuracy

    @property
    def model(self) -> nn.Module:
        return self.state.model
