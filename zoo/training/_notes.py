"""Options that would do nothing in a run, said in one line each before it starts, so that a
flag typed by hand is never silently ignored.

    >>> unused_options(TrainConfig(name="resnet18", optimizer="adam", momentum=0.8))
    ['--momentum does nothing with --optimizer adam (it applies to sgd and rmsprop)']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zoo.training._config import TrainConfig

MOMENTUM = ("sgd", "rmsprop")  # the optimizers that take --momentum
GAMMA = ("step", "multistep", "exponential", "plateau")  # the schedulers that take --gamma


def unused_options(config: TrainConfig) -> list[str]:
    """A line per option set away from its default that this run's other options ignore."""
    from zoo.training._config import TrainConfig

    default, lines = TrainConfig(), []
    if config.momentum != default.momentum and config.optimizer not in MOMENTUM:
        lines.append(_ignored("momentum", f"--optimizer {config.optimizer}", MOMENTUM))
    if config.step_size != default.step_size and config.scheduler != "step":
        lines.append(_ignored("step_size", f"--scheduler {config.scheduler}", ("step",)))
    if config.gamma is not None and config.scheduler not in GAMMA:
        lines.append(_ignored("gamma", f"--scheduler {config.scheduler}", GAMMA))
    if config.milestones and config.scheduler != "multistep":
        lines.append(_ignored("milestones", f"--scheduler {config.scheduler}", ("multistep",)))
    if config.train_bn and not config.freeze_until:
        lines.append(
            "--train-bn does nothing without --freeze-until: nothing is frozen, so every "
            "BatchNorm layer trains anyway"
        )
    if config.freeze_until and str(config.weights).lower() == "none":
        lines.append(
            f"warning: --freeze-until {config.freeze_until} with --weights none freezes randomly "
            "initialised layers, which will never learn; drop one of the two"
        )
    return lines


def unused_val_split(config: TrainConfig, layout: str) -> list[str]:
    """--val-split given for data that comes with its own validation folder."""
    from zoo.training._config import TrainConfig

    if layout != "train-valid" or config.val_split == TrainConfig().val_split:
        return []
    return [
        "--val-split does nothing here: the data has its own validation folder "
        "(valid/, val/ or test/)"
    ]


def _ignored(option: str, because: str, applies_to: tuple[str, ...]) -> str:
    flag = "--" + option.replace("_", "-")
    return f"{flag} does nothing with {because} (it applies to {' and '.join(applies_to)})"
