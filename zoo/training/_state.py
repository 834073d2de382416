"""What a run must keep to resume: the training state, and the one place it meets last.pt.

Every part with ``state_dict()``/``load_state_dict()`` (the model, the optimizer, the scheduler,
the gradient scaler, the progress) is saved and restored through ``TrainingState``; a part
that joins resume does so by joining it, not by editing the trainer. last.pt's keys are those
of runs made before this module existed, so their run directories still resume.

    >>> save_last(run, state, meta)          # rank 0, after each epoch
    >>> load_last(run, state)                # a resumed run, before its first epoch
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from zoo.training._seeding import restore_rng, rng_state

if TYPE_CHECKING:
    from torch import nn

    from zoo.runs import RunDir


@dataclass
class Progress:
    """Where the run stands: saved in last.pt, but for ``rows`` (metrics.jsonl)."""

    epoch: int = 0  # epochs finished
    best_val_acc: float = -1.0
    best_epoch: int = 0
    seconds: float = 0.0  # wall time of the epochs run so far
    rows: list[dict] = field(default_factory=list)  # metrics.jsonl
    schedule_epochs: int | None = None  # the --epochs the LR schedule is for; None: unknown

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "best_val_acc": self.best_val_acc,
            "best_epoch": self.best_epoch,
            "seconds": self.seconds,
            "schedule_epochs": self.schedule_epochs,
        }

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.seconds = state["epoch"], state["seconds"]
        self.best_val_acc, self.best_epoch = state["best_val_acc"], state["best_epoch"]
        self.schedule_epochs = state.get("schedule_epochs")  # absent from older runs' last.pt


@dataclass
class TrainingState:
    """The parts of a run that change as it trains."""

    model: nn.Module  # the model itself, not its DistributedDataParallel wrapper
    optimizer: object  # torch.optim.Optimizer
    scheduler: object | None  # an epoch-wise LR scheduler, or None
    scaler: object | None  # torch.amp.GradScaler for fp16 on CUDA, else None
    progress: Progress = field(default_factory=Progress)
    warmup: object | None = None  # a per-step LinearLR (--warmup-epochs), or None
    average: object | None = None  # AveragedModel of the weights (--ema), or None

    def saved_weights(self) -> dict:
        """The weights best.pt and last.pt's ``model`` hold: the average when --ema is on."""
        return cpu_state(self.average.module if self.average is not None else self.model)

    def state_dict(self) -> dict:
        """last.pt's keys but ``meta``; the model's tensors copied to the CPU. With --ema,
        ``model`` is the average and ``trained_model`` the weights the optimizer steps."""
        state = {
            "model": self.saved_weights(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": _state_or_none(self.scheduler),
            "scaler": _state_or_none(self.scaler),
            "progress": self.progress.state_dict(),
            "rng": rng_state(),
        }
        # Only with the recipe that needs them: last.pt keeps the keys of older runs otherwise.
        if self.warmup is not None:
            state["warmup"] = self.warmup.state_dict()
        if self.average is not None:
            state["trained_model"] = cpu_state(self.model)
            state["average_steps"] = int(self.average.n_averaged)
        return state

    def snapshot(self) -> dict:
        """``state_dict()`` with every tensor a copy: it stays this epoch's state while
        training goes on (the optimizer's and scaler's state dicts hold live tensors)."""
        import copy

        state = self.state_dict()
        for key in ("optimizer", "scaler", "scheduler", "warmup"):
            if key in state:
                state[key] = copy.deepcopy(state[key])
        return state

    def load_state_dict(self, state: dict) -> None:
        """Every part back as ``state_dict`` saved it; a part saved as None stays as built."""
        self.model.load_state_dict(state.get("trained_model", state["model"]))
        if self.average is not None and "average_steps" in state:
            self.average.module.load_state_dict(state["model"])
            self.average.n_averaged.fill_(state["average_steps"])
        if self.warmup is not None and state.get("warmup"):
            self.warmup.load_state_dict(state["warmup"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler"):
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.progress.load_state_dict(state["progress"])
        restore_rng(state.get("rng"))


def save_last(run: RunDir, state: TrainingState, meta: dict) -> None:
    """Write last.pt: ``state`` and ``meta``, what the model is (``best.pt`` has the same)."""
    run.save_last({**state.state_dict(), "meta": meta})


def load_last(run: RunDir, state: TrainingState, saved: dict | None = None) -> None:
    """Restore ``state`` from last.pt (``saved``, when the caller read it already), with the
    metrics rows of the epochs it ran."""
    state.load_state_dict(run.read_last() if saved is None else saved)
    state.progress.rows = run.metrics()[: state.progress.epoch]


def cpu_state(model) -> dict:
    """The model's tensors, copied to the CPU: what stays valid while training goes on."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _state_or_none(part) -> dict | None:
    return part.state_dict() if part is not None else None
