"""The fine-tuning options: defaults from the seeds' recipe, checked before any work starts.

The one place for their defaults and choices: ``zoo finetune``'s options are built from them.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

from zoo.errors import TrainingError

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULERS = ("step", "multistep", "exponential", "plateau", "cosine", "none")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
AUGMENT_POLICIES = ("none", "trivial", "rand", "auto", "augmix")
CLASS_WEIGHTS = ("none", "auto")
RECIPES = ("seeds", "modern")
FLOATS = ("lr", "momentum", "weight_decay", "gamma", "val_split")  # each must be finite
RECIPE_FLOATS = ("warmup_epochs", "label_smoothing", "mixup", "cutmix", "ema", "layer_decay")


@dataclass
class TrainConfig:
    """Every option of a fine-tuning run; ``config.json`` records the resolved values."""

    # The options with a fixed set of values: check() refuses any other, the CLI offers these.
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "optimizer": OPTIMIZERS,
        "scheduler": SCHEDULERS,
        "precision": PRECISIONS,
        "augment_policy": AUGMENT_POLICIES,
        "class_weights": CLASS_WEIGHTS,
        "recipe": RECIPES,
    }

    name: str | None = None  # the backbone, [SOURCE:]ARCH[.TAG]
    data: str | None = None  # image folder; None: the embedded dataset
    weights: str | None = "default"  # tag, file, run directory, or none
    num_classes: int | None = None  # head size; None: the number of classes found
    freeze_until: str | None = None  # freeze point (or 'backbone'); None: train everything
    train_bn: bool = False  # let frozen BatchNorm layers train
    epochs: int = 25  # the seeds' 25
    batch_size: int | None = 64  # per process; None: --recipe modern's, from the data
    lr: float = 0.001
    momentum: float = 0.9  # sgd and rmsprop
    optimizer: str = "sgd"
    weight_decay: float = 0.0
    scheduler: str = "step"
    step_size: int = 7  # step: epochs between decays
    gamma: float | None = None  # decay factor; None: 0.1, or 0.9 for exponential
    milestones: list[int] | None = None  # multistep; None: half and three quarters of epochs
    patience: int | None = None  # stop after this many epochs without a better val accuracy
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    workers: int | None = None  # DataLoader workers; None: chosen from the CPU count
    output: str | None = None  # run directory; None: runs/<arch>-<YYYYmmdd-HHMMSS>
    val_split: float = 0.2  # for DIR/<class>/* folders
    image_size: int | None = None  # override the backbone's input size
    augment: bool = True  # random resized crop and horizontal flip while training
    cache_features: bool | None = None  # None: automatic
    threads: int | None = None  # CPU threads for torch; None: the CPUs this process may use
    compile: bool = False  # torch.compile the modules that train and validate
    labels: str | None = None  # a labels CSV (image,label[,split]) in place of --data
    multi_label: bool = False  # labels separated by '|', per-label binary cross-entropy
    threshold: float = 0.5  # multi-label: a label is predicted when its probability reaches this
    tensorboard: bool = False  # per-epoch scalars as TensorBoard events under RUN/tensorboard/
    # Recipes beyond the seeds' (zoo.training._recipe); --recipe modern sets several at once.
    recipe: str = "seeds"  # the bundle the defaults below came from (RECIPE_VALUES)
    warmup_epochs: float = 0.0  # linear warmup, counted in optimizer steps
    label_smoothing: float = 0.0
    augment_policy: str = "none"  # torchvision's policy on top of crop and flip
    mixup: float = 0.0  # Beta(a, a) mixing of image pairs; 0: off
    cutmix: float = 0.0  # Beta(a, a) box pasting; 0: off
    ema: float | None = None  # decay of the weights' moving average; None: off
    layer_decay: float | None = None  # each freeze-point stage gets F times the one above
    unfreeze_after: int | None = None  # epochs with --freeze-until, then everything trains
    class_weights: str = "none"  # auto: inverse class frequency in the loss
    balanced: bool = False  # draw every class equally often each epoch

    @property
    def random_augmentation(self) -> bool:
        """True when the train images differ from epoch to epoch (no cache can serve them)."""
        return bool(self.no_random_augmentation())

    def no_random_augmentation(self) -> list[str]:
        """The flags that would turn this run's random augmentation off."""
        turned_on = {
            "--no-augment": self.augment,
            "--augment-policy none": self.augment_policy != "none",
            "--mixup 0": self.mixup > 0,
            "--cutmix 0": self.cutmix > 0,
        }
        return [flag for flag, on in turned_on.items() if on]

    def check(self) -> TrainConfig:
        """Raise TrainingError for an option no run could use."""
        _check_types(self)
        for name in FLOATS:  # nan and inf pass every comparison below, or compare wrongly
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise TrainingError(f"{self.flag(name)} must be a finite number, got {value}")
        for name in ("epochs", "step_size"):
            _positive(name, getattr(self, name))
        _positive("lr", self.lr)
        for name in ("batch_size", "num_classes", "image_size", "patience", "threads"):
            if getattr(self, name) is not None:
                _positive(name, getattr(self, name))
        if self.workers is not None and self.workers < 0:
            raise TrainingError(f"--workers must be 0 or more, got {self.workers}")
        if not 0 < self.val_split < 1:
            raise TrainingError(f"--val-split must be between 0 and 1, got {self.val_split}")
        if self.weight_decay < 0 or self.momentum < 0:
            raise TrainingError("--weight-decay and --momentum must not be negative")
        if self.gamma is not None and not 0 < self.gamma <= 1:
            raise TrainingError(f"--gamma must be in (0, 1], got {self.gamma}")
        for name, choices in self.CHOICES.items():
            _choice(name, getattr(self, name), choices)
        _check_labels(self)
        if self.tensorboard:
            _need_tensorboard()
        self._check_recipe()
        return self

    def _check_recipe(self) -> None:
        for name in RECIPE_FLOATS:
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise TrainingError(f"{self.flag(name)} must be a finite number, got {value}")
        for name in ("warmup_epochs", "mixup", "cutmix"):
            if getattr(self, name) < 0:
                raise TrainingError(
                    f"{self.flag(name)} must not be negative, got {getattr(self, name)}"
                )
        if not 0 <= self.label_smoothing < 1:
            raise TrainingError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise TrainingError(f"--ema must be in (0, 1), e.g. 0.999, got {self.ema}")
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise TrainingError(f"--layer-decay must be in (0, 1], got {self.layer_decay}")
        if self.augment_policy != "none" and not self.augment:
            raise TrainingError(
                f"--augment-policy {self.augment_policy} goes on top of the random crop and "
                "flip, which --no-augment turns off; drop one of them"
            )
        self._check_unfreeze()

    def _check_unfreeze(self) -> None:
        if self.unfreeze_after is None:
            return
        if not self.freeze_until:
            raise TrainingError("--unfreeze-after needs --freeze-until: name what to unfreeze")
        if not 0 < self.unfreeze_after < self.epochs:
            raise TrainingError(
                f"--unfreeze-after must be between 1 and --epochs - 1 ({self.epochs - 1}), "
                f"got {self.unfreeze_after}"
            )

    @staticmethod
    def flag(option: str) -> str:
        """The command-line flag of option ``option``, for the CLI and for messages.

        >>> TrainConfig.flag("freeze_until")
        '--freeze-until'
        """
        return "--" + option.replace("_", "-")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _need_tensorboard() -> None:
    try:
        import tensorboard  # noqa: F401 - torch.utils.tensorboard needs it
    except ImportError:
        from zoo.errors import ExtraMissingError

        raise ExtraMissingError("tensorboard", "tensorboard", "--tensorboard") from None


def _positive(name: str, value) -> None:
    if value is None or value <= 0:
        raise TrainingError(f"{TrainConfig.flag(name)} must be positive, got {value}")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise TrainingError(
            f"{TrainConfig.flag(name)} must be one of {', '.join(choices)}, got '{value}'"
        )


def _check_types(config: TrainConfig) -> None:
    """A value of the wrong type (``epochs="3"`` from Python) is one TrainingError line, not
    a TypeError deep in a run; paths may be ``os.PathLike``."""
    for f in fields(config):
        value, kind = getattr(config, f.name), str(f.type).replace(" | None", "")
        if value is None and "None" in str(f.type):
            continue
        if kind == "str" and isinstance(value, os.PathLike):
            setattr(config, f.name, value := os.fspath(value))
        if not _is(value, kind):
            raise TrainingError(
                f"{TrainConfig.flag(f.name)} must be {_KINDS.get(kind, kind)}, got {value!r}"
            )


_KINDS = {
    "int": "a whole number",
    "float": "a number",
    "str": "text",
    "bool": "True or False",
    "list[int]": "a list of whole numbers",
}


def _is(value, kind: str) -> bool:
    if kind == "list[int]":
        return isinstance(value, list | tuple) and all(_is(v, "int") for v in value)
    if kind in ("int", "float") and isinstance(value, bool):
        return False
    allowed = {"int": int, "float": int | float, "str": str, "bool": bool}.get(kind, object)
    return isinstance(value, allowed)


def _check_labels(config: TrainConfig) -> None:
    """--labels, --multi-label and --threshold (``zoo.data._csv``)."""
    if config.labels is not None and config.data is not None:
        raise TrainingError("--labels FILE.csv stands in for --data; give one of them")
    if config.multi_label and config.labels is None:
        raise TrainingError("--multi-label needs --labels FILE.csv (class folders hold one label)")
    single = [f for f, on in (("--mixup", config.mixup), ("--cutmix", config.cutmix),
                              ("--balanced", config.balanced)) if on]  # fmt: skip
    if config.multi_label and single:
        raise TrainingError(f"{', '.join(single)}: single-label only, not with --multi-label")
    if not (math.isfinite(config.threshold) and 0 < config.threshold < 1):
        raise TrainingError(f"--threshold must be between 0 and 1, got {config.threshold}")
